/* The API library (librewire-api.a): thin calls into the agent, found in
 * the process by name, so a program linked with it runs the same with or
 * without rewire (and needs nothing of rewire's at run time). The agent's
 * entry points are the ABI: rewire_agent_poll, rewire_agent_on_patch,
 * rewire_agent_call (bindings for other languages call them the same way). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdatomic.h>
#include "../../include/rewire.h"

/* dlsym once; (void *)1 remembers "not there". */
static void *agent_sym(_Atomic(void *) *cache, const char *name)
{
	void *p = atomic_load_explicit(cache, memory_order_acquire);
	if (!p) {
		p = dlsym(RTLD_DEFAULT, name);
		atomic_store_explicit(cache, p ? p : (void *)1, memory_order_release);
	}
	return p == (void *)1 ? NULL : p;
}

int rewire_active(void)
{
	static _Atomic(void *) f;
	return agent_sym(&f, "rewire_agent_poll") != NULL;
}

int rewire_poll(void)
{
	static _Atomic(void *) f;
	int (*poll)(void) = (int (*)(void))agent_sym(&f, "rewire_agent_poll");
	return poll ? poll() : 0;
}

int rewire_on_patch(rewire_patch_fn fn, void *ctx)
{
	static _Atomic(void *) f;
	int (*reg)(rewire_patch_fn, void *) =
		(int (*)(rewire_patch_fn, void *))agent_sym(&f, "rewire_agent_on_patch");
	return reg ? reg(fn, ctx) : 0;
}

int rewire_call(void (*fn)(void *), void *arg)
{
	static _Atomic(void *) f;
	int (*call)(void (*)(void *), void *) =
		(int (*)(void (*)(void *), void *))agent_sym(&f, "rewire_agent_call");
	if (!call) {
		fn(arg);
		return 0;
	}
	return call(fn, arg);
}
