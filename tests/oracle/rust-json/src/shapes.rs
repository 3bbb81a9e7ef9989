//! Commands and shapes: serde-tagged enums, a trait with impls, match arms,
//! closures, generics, consts and statics.
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::stats;

pub const UNIT: &str = "cm";
pub const SCALE: f64 = 1.5;
const GREETING: &str = "hello";
static PRIMES: [u64; 8] = [2, 3, 5, 7, 11, 13, 17, 19];
static NAMES: &[&str] = &["zero", "one", "two", "three", "four"];
pub static LIMIT: i64 = 1000;

#[derive(Debug, Serialize, Deserialize, Clone)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Shape {
    Circle { r: f64 },
    Rect { w: f64, h: f64 },
    Tri { a: f64, b: f64, c: f64 },
}

pub trait Area {
    fn area(&self) -> f64;
    fn name(&self) -> String {
        "shape".to_string()
    }
    fn perimeter(&self) -> f64;
}

impl Area for Shape {
    fn area(&self) -> f64 {
        match self {
            Shape::Circle { r } => std::f64::consts::PI * r * r,
            Shape::Rect { w, h } => w * h,
            Shape::Tri { a, b, c } => {
                let s = (a + b + c) / 2.0;
                (s * (s - a) * (s - b) * (s - c)).sqrt()
            }
        }
    }
    fn name(&self) -> String {
        match self {
            Shape::Circle { .. } => "circle".into(),
            Shape::Rect { w, h } if w == h => "square".into(),
            Shape::Rect { .. } => "rect".into(),
            Shape::Tri { .. } => "triangle".into(),
        }
    }
    fn perimeter(&self) -> f64 {
        match *self {
            Shape::Circle { r } => 2.0 * std::f64::consts::PI * r,
            Shape::Rect { w, h } => 2.0 * (w + h),
            Shape::Tri { a, b, c } => a + b + c,
        }
    }
}

pub struct Scaled<T: Area>(pub T, pub f64);

impl<T: Area> Area for Scaled<T> {
    fn area(&self) -> f64 {
        self.0.area() * self.1 * self.1
    }
    fn perimeter(&self) -> f64 {
        self.0.perimeter() * self.1
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Command {
    Shapes { shapes: Vec<Shape> },
    Stats { values: Vec<f64> },
    Words { text: String },
    Primes { n: usize },
    Name { n: usize },
    Greet { who: String },
    Fizz { upto: u64 },
    Transform { value: Value },
    Sort { items: Vec<i64>, desc: bool },
    Clamp { x: i64 },
}

#[derive(Serialize)]
struct ShapeReport {
    name: String,
    area: f64,
    perimeter: f64,
    scaled: f64,
    unit: &'static str,
}

fn report<T: Area>(s: &T) -> ShapeReport {
    ShapeReport {
        name: s.name(),
        area: round3(s.area()),
        perimeter: round3(s.perimeter()),
        scaled: round3(Scaled(Dummy(s.area()), SCALE).area()),
        unit: UNIT,
    }
}

struct Dummy(f64);
impl Area for Dummy {
    fn area(&self) -> f64 {
        self.0
    }
    fn perimeter(&self) -> f64 {
        0.0
    }
}

pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn transform(v: &Value, depth: usize) -> Value {
    match v {
        Value::Null => json!("null!"),
        Value::Bool(b) => Value::Bool(!b),
        Value::Number(n) if n.is_i64() => json!(n.as_i64().unwrap() * 2 + 1),
        Value::Number(n) => json!(n.as_f64().unwrap() * 0.5),
        Value::String(s) => json!(s.chars().rev().collect::<String>()),
        Value::Array(a) => Value::Array(a.iter().map(|x| transform(x, depth + 1)).collect()),
        Value::Object(m) => {
            let mut out = serde_json::Map::new();
            for (k, x) in m {
                out.insert(format!("{}{}", k, depth), transform(x, depth + 1));
            }
            Value::Object(out)
        }
    }
}

fn fizz(n: u64) -> String {
    match (n % 3, n % 5) {
        (0, 0) => "FizzBuzz".to_string(),
        (0, _) => "Fizz".to_string(),
        (_, 0) => "Buzz".to_string(),
        _ => n.to_string(),
    }
}

fn run(cmd: Command) -> Value {
    match cmd {
        Command::Shapes { shapes } => {
            let reports: Vec<ShapeReport> = shapes.iter().map(report).collect();
            let total: f64 = stats::sum_by(&shapes, |s| s.area());
            let biggest = shapes
                .iter()
                .max_by(|a, b| a.area().partial_cmp(&b.area()).unwrap())
                .map(|s| s.name());
            json!({ "reports": reports, "total": round3(total), "biggest": biggest })
        }
        Command::Stats { values } => serde_json::to_value(stats::describe(&values)).unwrap(),
        Command::Words { text } => {
            let mut words: Vec<&str> = text.split_whitespace().collect();
            words.sort_by_key(|w| (std::cmp::Reverse(w.len()), w.to_string()));
            let caps: Vec<String> = words.iter().map(|w| stats::capitalize(w)).collect();
            json!({ "count": words.len(), "words": caps, "longest": words.first() })
        }
        Command::Primes { n } => json!(PRIMES.iter().take(n).map(|p| p * p).collect::<Vec<_>>()),
        Command::Name { n } => json!(NAMES.get(n).copied().unwrap_or("many")),
        Command::Greet { who } => json!(format!("{}, {}!", GREETING, who)),
        Command::Fizz { upto } => json!((1..=upto).map(fizz).collect::<Vec<_>>().join(" ")),
        Command::Transform { value } => transform(&value, 0),
        Command::Sort { mut items, desc } => {
            let key = |x: &i64| if desc { -x } else { *x };
            items.sort_by_key(key);
            json!(items)
        }
        Command::Clamp { x } => json!(x.clamp(-LIMIT, LIMIT)),
    }
}

pub fn handle(line: &str) -> String {
    match serde_json::from_str::<Command>(line) {
        Ok(cmd) => serde_json::to_string(&run(cmd)).unwrap(),
        Err(e) => format!("error: {}", e),
    }
}
