// The command line, parsed as argparse parses gunicorn's, and --help.
#include "cunicorn/config_impl.h"

#include <cstdlib>

namespace cunicorn {

using namespace conf;

// ---------------------------------------------------------------------------
// --help, laid out as argparse's HelpFormatter does (options column, help
// at column 24, wrapped), grouped by section.

const char *const conf::PROG = "cunicorn";

std::string conf::usage_line() { return std::string("usage: ") + PROG + " [OPTIONS] [APP_MODULE]\n"; }

static std::string metavar(const Setting &s) {
    if (s.meta) return s.meta;
    std::string m = s.name;
    for (char &c : m)
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    return m;
}

static std::string invocation(const Setting &s) {
    std::vector<std::string> parts;
    for (const auto &f : s.flags) {
        switch (s.action) {
        case CliAction::STORE:
        case CliAction::APPEND: parts.push_back(f + " " + metavar(s)); break;
        case CliAction::OPTIONAL: parts.push_back(f + " [" + metavar(s) + "]"); break;
        default: parts.push_back(f); break;
        }
    }
    return join(parts, ", ");
}

static std::vector<std::string> wrap(const std::string &text, size_t width) {
    std::vector<std::string> lines;
    std::string line;
    for (const auto &word : split(text, " ")) {
        if (word.empty()) continue;
        if (!line.empty() && line.size() + 1 + word.size() > width) {
            lines.push_back(line);
            line.clear();
        }
        line += (line.empty() ? "" : " ") + word;
    }
    if (!line.empty()) lines.push_back(line);
    return lines;
}

static void help_entry(std::string &out, const std::string &inv, const std::string &text, size_t width) {
    const size_t help_pos = 24;
    std::string head = "  " + inv;
    std::vector<std::string> lines = wrap(text, width > help_pos + 20 ? width - help_pos : 20);
    if (head.size() <= help_pos - 2) {
        head.resize(help_pos, ' ');
        out += head + (lines.empty() ? "" : lines[0]) + "\n";
        for (size_t k = 1; k < lines.size(); ++k) out += std::string(help_pos, ' ') + lines[k] + "\n";
    } else {
        out += head + "\n";
        for (const auto &l : lines) out += std::string(help_pos, ' ') + l + "\n";
    }
}

std::string format_help() {
    size_t width = 78;
    if (const char *cols = std::getenv("COLUMNS")) {
        int n = std::atoi(cols);
        if (n > 40) width = static_cast<size_t>(n) - 2;
    }
    std::string out = usage_line() + "\n";
    out += "options:\n";
    help_entry(out, "-h, --help", "show this help message and exit", width);
    help_entry(out, "-v, --version", "show program's version number and exit", width);
    std::vector<std::string> sections;
    for (const auto &s : settings_table()) {
        if (s.flags.empty()) continue;
        bool seen = false;
        for (const auto &name : sections) seen = seen || name == s.section;
        if (!seen) sections.push_back(s.section);
    }
    for (const auto &section : sections) {
        out += "\n" + section + ":\n";
        for (const auto &s : settings_table()) {
            if (s.flags.empty() || section != s.section) continue;
            // Setting.add_option: "<first line of desc> [<default>]".
            std::string d;
            try {
                d = py_str(s.default_value());
            } catch (const Invalid &) {
                d = "?";
            }
            std::string text = std::string(s.help) + " [" + d + "]";
            if (s.support == Support::ACCEPTED_NO_EFFECT) text += " (no effect: " + std::string(s.reason) + ")";
            if (s.support == Support::REFUSED) text += " (refused: " + std::string(s.reason) + ")";
            help_entry(out, invocation(s), text, width);
        }
    }
    return out;
}

// ---------------------------------------------------------------------------
// The command line, parsed as argparse parses gunicorn's (allow_abbrev,
// "-w4", "-DR", "--opt=value", "--" and negative numbers as values).

namespace {

struct OptionString {
    std::string flag;
    int setting;  // index in the table, or OPT_HELP / OPT_VERSION
};

const std::vector<OptionString> &option_strings() {
    static const std::vector<OptionString> opts = [] {
        std::vector<OptionString> o{
            {"-h", OPT_HELP}, {"--help", OPT_HELP}, {"-v", OPT_VERSION}, {"--version", OPT_VERSION}};
        const auto &t = settings_table();
        for (size_t k = 0; k < t.size(); ++k)
            for (const auto &f : t[k].flags) o.push_back({f, static_cast<int>(k)});
        return o;
    }();
    return opts;
}

const OptionString *exact_option(const std::string &flag) {
    for (const auto &o : option_strings())
        if (o.flag == flag) return &o;
    return nullptr;
}

struct Classified {
    enum Kind { POSITIONAL, OPTION, UNKNOWN } kind = POSITIONAL;
    const OptionString *opt = nullptr;
    bool has_explicit = false;
    std::string explicit_arg;
};

// argparse _parse_optional.
Classified classify(const std::string &arg) {
    Classified c;
    if (arg.empty() || arg[0] != '-') return c;
    if (const OptionString *o = exact_option(arg)) {
        c.kind = Classified::OPTION;
        c.opt = o;
        return c;
    }
    if (arg.size() == 1) return c;
    size_t eq = arg.find('=');
    if (eq != std::string::npos) {
        if (const OptionString *o = exact_option(arg.substr(0, eq))) {
            c.kind = Classified::OPTION;
            c.opt = o;
            c.has_explicit = true;
            c.explicit_arg = arg.substr(eq + 1);
            return c;
        }
    }
    // _get_option_tuples: unique prefixes of long options, "-xVALUE".
    std::vector<Classified> found;
    if (arg[1] == '-') {
        std::string prefix = eq == std::string::npos ? arg : arg.substr(0, eq);
        for (const auto &o : option_strings()) {
            if (o.flag.rfind(prefix, 0) != 0) continue;
            Classified m;
            m.kind = Classified::OPTION;
            m.opt = &o;
            if (eq != std::string::npos) {
                m.has_explicit = true;
                m.explicit_arg = arg.substr(eq + 1);
            }
            found.push_back(m);
        }
    } else {
        std::string short_prefix = arg.substr(0, 2);
        for (const auto &o : option_strings()) {
            Classified m;
            m.kind = Classified::OPTION;
            m.opt = &o;
            if (o.flag == short_prefix) {
                m.has_explicit = true;
                m.explicit_arg = arg.substr(2);
                found.push_back(m);
            } else if (o.flag.rfind(arg, 0) == 0) {
                found.push_back(m);
            }
        }
    }
    if (found.size() > 1) {
        std::vector<std::string> names;
        for (const auto &m : found) names.push_back(m.opt->flag);
        throw UsageError("ambiguous option: " + arg + " could match " + join(names, ", "));
    }
    if (found.size() == 1) return found[0];
    // A negative number is a value (no option looks like one).
    bool negative_number = arg.size() > 1;
    bool dot = false, digits = false;
    for (size_t k = 1; k < arg.size(); ++k) {
        if (arg[k] >= '0' && arg[k] <= '9') digits = true;
        else if (arg[k] == '.' && !dot) dot = true;
        else negative_number = false;
    }
    if (negative_number && digits && !(dot && arg.back() == '.')) return c;
    if (arg.find(' ') != std::string::npos) return c;
    c.kind = Classified::UNKNOWN;
    return c;
}

std::string arg_name(const Setting &s) { return join(s.flags, "/"); }

V convert(const Setting &s, const std::string &raw) {
    if (s.cli_type == CliType::STR) return V::str(raw);
    IntParse p = s.cli_type == CliType::INT ? py_int(raw, 10) : auto_int(raw);
    if (!p.ok || p.overflow)
        throw UsageError("argument " + arg_name(s) + ": invalid " +
                         (s.cli_type == CliType::INT ? "int" : "auto_int") + " value: " + repr_str(raw));
    return V::integer(p.value);
}

}  // namespace

Parsed conf::parse_args(const std::vector<std::string> &args, bool lenient) {
    const auto &table = settings_table();
    Parsed out;
    // argparse classifies every argument before consuming any, so an
    // ambiguous option fails first wherever it is.
    size_t dashdash = args.size();
    std::vector<Classified> kinds;
    for (size_t k = 0; k < args.size(); ++k) {
        if (args[k] == "--") {
            dashdash = k;
            break;
        }
        try {
            kinds.push_back(classify(args[k]));
        } catch (const UsageError &) {
            if (!lenient) throw;
            kinds.emplace_back();
            kinds.back().kind = Classified::UNKNOWN;
        }
    }
    std::vector<std::string> extras;
    for (size_t k = 0; k < dashdash; ++k) {
        Classified c = kinds[k];
        if (c.kind == Classified::POSITIONAL) {
            out.positionals.push_back(args[k]);
            continue;
        }
        if (c.kind == Classified::UNKNOWN) {
            extras.push_back(args[k]);
            continue;
        }
        for (;;) {
            if (c.opt->setting < 0 && lenient) break;
            if (c.opt->setting < 0) {
                // "-hv" acts as -h (it comes first); "--help=x" is an error.
                if (c.has_explicit && c.opt->flag[1] == '-')
                    throw UsageError(std::string("argument ") +
                                     (c.opt->setting == OPT_HELP ? "-h/--help" : "-v/--version") +
                                     ": ignored explicit argument " + repr_str(c.explicit_arg));
                out.action = c.opt->setting;
                return out;
            }
            size_t idx = static_cast<size_t>(c.opt->setting);
            const Setting &s = table[idx];
            if (s.action == CliAction::STORE_TRUE || s.action == CliAction::STORE_FALSE) {
                out.values[idx] = V::boolean(s.action == CliAction::STORE_TRUE);
                if (!c.has_explicit) break;
                // "-DR": the rest of a single-dash flag is more flags.
                if (c.opt->flag[1] != '-' && !c.explicit_arg.empty()) {
                    const OptionString *next = exact_option(std::string("-") + c.explicit_arg[0]);
                    if (!next && lenient) break;
                    if (!next)
                        throw UsageError("argument " + arg_name(s) + ": ignored explicit argument " +
                                         repr_str(c.explicit_arg));
                    std::string rest = c.explicit_arg.substr(1);
                    c.opt = next;
                    c.has_explicit = !rest.empty();
                    c.explicit_arg = rest;
                    continue;
                }
                if (lenient) break;
                throw UsageError("argument " + arg_name(s) + ": ignored explicit argument " + repr_str(c.explicit_arg));
            }
            std::string raw;
            bool have = false;
            if (c.has_explicit) {
                raw = c.explicit_arg;
                have = true;
            } else if (k + 1 < dashdash && kinds[k + 1].kind == Classified::POSITIONAL) {
                raw = args[++k];
                have = true;
            }
            if (s.action == CliAction::OPTIONAL) {
                out.values[idx] = have ? V::str(raw) : V::str(s.optional_const);
                break;
            }
            if (!have && lenient) break;
            if (!have) throw UsageError("argument " + arg_name(s) + ": expected one argument");
            V v;
            try {
                v = convert(s, raw);
            } catch (const UsageError &) {
                if (!lenient) throw;
                break;
            }
            if (s.action == CliAction::APPEND) {
                V &list = out.values[idx];
                list.kind = V::LIST;
                list.list.push_back(v);
            } else {
                out.values[idx] = v;
            }
            break;
        }
    }
    for (size_t k = dashdash + 1; k < args.size(); ++k) out.positionals.push_back(args[k]);
    if (!extras.empty() && !lenient) throw UsageError("unrecognized arguments: " + join(extras, " "));
    return out;
}

// shlex.split (POSIX mode) for GUNICORN_CMD_ARGS.
std::vector<std::string> conf::shlex_split(const std::string &s) {
    std::vector<std::string> out;
    std::string tok;
    bool in_tok = false;
    size_t k = 0;
    while (k < s.size()) {
        char c = s[k];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            if (in_tok) out.push_back(tok);
            tok.clear();
            in_tok = false;
            ++k;
        } else if (c == '\\') {
            if (k + 1 >= s.size()) throw ConfigError("No escaped character");
            tok += s[k + 1];
            in_tok = true;
            k += 2;
        } else if (c == '\'') {
            size_t end = s.find('\'', k + 1);
            if (end == std::string::npos) throw ConfigError("No closing quotation");
            tok += s.substr(k + 1, end - k - 1);
            in_tok = true;
            k = end + 1;
        } else if (c == '"') {
            ++k;
            for (;;) {
                if (k >= s.size()) throw ConfigError("No closing quotation");
                if (s[k] == '"') break;
                // Inside double quotes a backslash escapes only " and \.
                if (s[k] == '\\' && k + 1 < s.size() && (s[k + 1] == '"' || s[k + 1] == '\\')) ++k;
                tok += s[k++];
            }
            in_tok = true;
            ++k;
        } else {
            tok += c;
            in_tok = true;
            ++k;
        }
    }
    if (in_tok) out.push_back(tok);
    return out;
}

}  // namespace cunicorn
