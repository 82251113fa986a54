// Replays every file of a directory (tests/fuzz/corpus/regressions) through
// all three fuzz entry points with a plain main(), so that hosts without
// clang/libFuzzer still run the inputs that once crashed (uWS
// regression_test). A regression aborts, like the fuzzer would.
//
// The unit tests link it without its main():
//   #define CUNICORN_REPLAY_NO_MAIN
//   #include "../fuzz/replay_main.cpp"
// Stand-alone: c++ -std=c++17 -Iinclude tests/fuzz/replay_main.cpp
//              src/http_parser.cpp -o replay && ./replay [dir]
#define CUNICORN_FUZZ_NO_ENTRY
#include "fuzz_chunked.cpp"
#include "fuzz_http_parser.cpp"
#include "fuzz_proxy.cpp"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

// Returns how many files were replayed, or -1 if `dir` cannot be read.
inline int replay_regressions(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    std::vector<std::string> files;
    while (struct dirent *e = readdir(d)) {
        std::string path = std::string(dir) + "/" + e->d_name;
        struct stat st;
        if (e->d_name[0] != '.' && stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode)) files.push_back(path);
    }
    closedir(d);
    std::sort(files.begin(), files.end());
    for (const std::string &path : files) {
        FILE *f = std::fopen(path.c_str(), "rb");
        if (!f) return -1;
        std::vector<uint8_t> buf;
        uint8_t tmp[4096];
        size_t n;
        while ((n = std::fread(tmp, 1, sizeof tmp, f)) > 0) buf.insert(buf.end(), tmp, tmp + n);
        std::fclose(f);
        // Exact-size copies so that an over-read is past the allocation.
        std::vector<uint8_t> a(buf), b(buf), c(buf);
        fuzz_http_parser::one(a.data(), a.size());
        fuzz_chunked::one(b.data(), b.size());
        fuzz_proxy::one(c.data(), c.size());
    }
    return int(files.size());
}

#ifndef CUNICORN_REPLAY_NO_MAIN
int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "tests/fuzz/corpus/regressions";
    int n = replay_regressions(dir);
    if (n < 0) {
        std::fprintf(stderr, "replay: cannot read %s\n", dir);
        return 1;
    }
    std::printf("replay: %d inputs from %s, no crash\n", n, dir);
    return 0;
}
#endif
