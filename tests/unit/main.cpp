// Runs every registered TEST in order, prints TAP, ends with a count line
// that tests/run.py reads: "unit: N passed, N failed".
#include "harness.h"

#include "cunicorn/config.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <sstream>
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
// cunicorn does with it, made from the settings table itself so that the
// README cannot drift from it (test_config_sources.py compares the two).
// Grouped by section as --help is; the reason of a setting accepted
// without effect or refused is wrapped under it.
static int print_settings_support() {
    const auto &table = cunicorn::settings_table();
    size_t width = 0;
    for (const auto &s : table) width = std::max(width, std::strlen(s.name));
    const size_t status_col = 4 + width + 2, line_max = 79;
    std::vector<std::string> sections;
    for (const auto &s : table)
        if (std::find(sections.begin(), sections.end(), s.section) == sections.end()) sections.push_back(s.section);
    for (const auto &section : sections) {
        std::printf("  %s\n", section.c_str());
        for (const auto &s : table) {
            if (section != s.section) continue;
            std::string line = "    " + std::string(s.name);
            line.resize(status_col, ' ');
            if (s.support == cunicorn::Support::IMPLEMENTED) {
                std::printf("%s\n", (line + "implemented").c_str());
                continue;
            }
            line += s.support == cunicorn::Support::REFUSED ? "refused:" : "no effect:";
            std::string word;
            std::istringstream words(s.reason);
            while (words >> word) {
                if (line.size() + 1 + word.size() > line_max && line.size() > status_col + 2) {
                    std::printf("%s\n", line.c_str());
                    line.assign(status_col + 2, ' ');
                    line += word;
                } else {
                    line += " " + word;
                }
            }
            std::printf("%s\n", line.c_str());
        }
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && std::strcmp(argv[1], "--settings-support") == 0) return print_settings_support();
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
