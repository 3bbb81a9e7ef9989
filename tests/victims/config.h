/* config.h: a constant two units use (e2e "header change patches every
 * unit that includes it"). */
#define FACTOR 2 /* @FACTOR */
