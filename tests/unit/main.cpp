// Runs every registered TEST in order, prints TAP, ends with a count line
// that tests/run.py reads: "unit: N passed, N failed".
#include "harness.h"

#include <cstdio>
#include <cstring>
#include <vector>

namespace harness {

struct Entry {
    const char *name;
    TestFn fn;
};

static std::vector<Entry> &registry() {
    static std::vector<Entry> tests;
    return tests;
}

static int g_failures_in_test;

int add(const char *name, TestFn fn) {
    registry().push_back({name, fn});
    return 0;
}

void fail(const char *file, int line, const std::string &what) {
    ++g_failures_in_test;
    std::printf("#   %s:%d: %s\n", file, line, what.c_str());
}

}  // namespace harness

int main(int argc, char **argv) {
    const char *only = argc > 1 ? argv[1] : nullptr;
    auto &tests = harness::registry();
    int passed = 0, failed = 0, n = 0;
    std::printf("1..%zu\n", tests.size());
    for (const auto &t : tests) {
        ++n;
        if (only && !std::strstr(t.name, only)) continue;
        harness::g_failures_in_test = 0;
        t.fn();
        if (harness::g_failures_in_test == 0) {
            ++passed;
            std::printf("ok %d - %s\n", n, t.name);
        } else {
            ++failed;
            std::printf("not ok %d - %s\n", n, t.name);
        }
        std::fflush(stdout);
    }
    std::printf("unit: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
