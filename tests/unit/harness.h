// A minimal test harness: TEST(name) registers a function, CHECK* report
// both values with file:line, the runner prints TAP and a summary line.
#ifndef CUNICORN_TEST_HARNESS_H
#define CUNICORN_TEST_HARNESS_H

#include <sstream>
#include <string>

namespace harness {

using TestFn = void (*)();
int add(const char *name, TestFn fn);
void fail(const char *file, int line, const std::string &what);

template <typename A, typename B>
void check_eq(const A &a, const B &b, const char *as, const char *bs, const char *file, int line) {
    if (a == b) return;
    std::ostringstream o;
    o << as << " == " << bs << "\n#   got:      " << a << "\n#   expected: " << b;
    fail(file, line, o.str());
}

}  // namespace harness

#define HARNESS_CAT2(a, b) a##b
#define HARNESS_CAT(a, b) HARNESS_CAT2(a, b)
#define TEST(name)                                                                  \
    static void test_##name();                                                      \
    static int HARNESS_CAT(reg_, name) = harness::add(#name, test_##name);          \
    static void test_##name()
#define CHECK(cond) \
    do { if (!(cond)) harness::fail(__FILE__, __LINE__, #cond); } while (0)
#define CHECK_EQ(a, b) harness::check_eq((a), (b), #a, #b, __FILE__, __LINE__)

#endif
