// Linked into the sanitizer builds (cunicorn-asan, unit-tests-asan), so
// that LeakSanitizer can check every process of cunicorn as it exits, and
// finds only what cunicorn's code loses. Test-only: the normal build never
// contains it.
#include <Python.h>
#include <sanitizer/lsan_interface.h>

#include <cstdlib>

namespace {

// LSan looks for pointers in the stacks, the globals and the heap blocks
// it can reach, never in other mapped memory. CPython's small-object
// allocator puts objects in arenas it maps, and each thread's frames in
// chunks from the same allocator: a block that only an object or a running
// frame points to would be reported lost. From malloc, the arenas and
// chunks are heap blocks LSan reaches through the interpreter's state.
void *arena_alloc(void *, size_t size) { return std::malloc(size); }
void arena_free(void *, void *ptr, size_t) { std::free(ptr); }

struct ArenasFromMalloc {
    ArenasFromMalloc() {
        PyObjectArenaAllocator allocator = {nullptr, arena_alloc, arena_free};
        PyObject_SetArenaAllocator(&allocator);
    }
} arenas_from_malloc;  // before main(), so before the interpreter starts

}  // namespace

extern "C" {

// Blocks CPython allocates on its own behalf and loses on purpose, never
// those of cunicorn's code; built in, so that they hold in an environment
// that keeps no LSAN_OPTIONS (openrc-run, systemd-socket-activate). Each
// entry matches a function on the stack of the lost block's allocation.
//
// The interpreter's runtime, interpreter-state and import locks are made
// while it starts (cunicorn::py::init). In a forked child,
// PyOS_AfterFork_Child makes new ones and drops the old ones without
// freeing them (another thread of the parent may have held them), so every
// worker loses them (tests/valgrind/cpython.supp has the same entry). The
// stack ends in libpython, which keeps no frame pointers, so the lock
// allocator is the narrowest match; cunicorn never calls it, and a Python
// lock object that leaked is reported on its own.
const char *__lsan_default_suppressions() { return "leak:PyThread_allocate_lock\n"; }

// The sanitizer builds link with -Wl,--wrap=_exit: every _exit() in
// cunicorn's code comes here. LSan checks at exit(); a worker, and any
// other forked child, leaves with _exit() and would never be checked. The
// check runs once per process; a leak ends the process there, with the
// report on stderr.
[[noreturn]] void __real__exit(int status);

[[noreturn]] void __wrap__exit(int status) {
    __lsan_do_leak_check();
    __real__exit(status);
}
}
