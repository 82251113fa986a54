// Runs every registered TEST in order, prints TAP, ends with a count line
// that tests/run.py reads: "unit: N passed, N failed".
#include "harness.h"

#include "cunicorn/config.h"
#include "cunicorn/pyembed.h"

#include <cstdio>
#include <cstring>
#include <string>
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

// "--settings-support": the README's table of every setting and what
// cunicorn does with it, made from the settings table and, for the values
// listed one by one, from what loading each does (value_support), so that
// the README cannot drift from the code (test_config_sources.py compares
// the two). "--settings-samples": those values, for the test that starts
// the server with each.
static int print_settings_support(bool samples) {
    cunicorn::py::init("cunicorn");
    std::fputs((samples ? cunicorn::format_support_samples() : cunicorn::format_support_table()).c_str(), stdout);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && std::strcmp(argv[1], "--settings-support") == 0) return print_settings_support(false);
    if (argc > 1 && std::strcmp(argv[1], "--settings-samples") == 0) return print_settings_support(true);
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
