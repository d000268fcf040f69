// Drives two lockstep::SequenceRuns (A and B) with operations read from stdin, one a line, and
// prints what each operation returns, for tests/test_sequence_runs.py to hold against its
// reference. Operations: "new MAX" (both sets anew, MAX runs at most), "add X SEQ", "has X SEQ",
// "cut X SEQ" (drop_below), "unite" (A gets B's numbers), "show X" (size, last_first, last,
// forgotten). X is A or B.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>

#include "lockstep/base/sequence_runs.hpp"

using lockstep::SequenceRuns;

int main() {
    std::unique_ptr<SequenceRuns> sets[2] = {std::make_unique<SequenceRuns>(),
                                             std::make_unique<SequenceRuns>()};
    char op[16], which[4];
    unsigned long long value;
    while (std::scanf("%15s", op) == 1) {
        if (std::strcmp(op, "unite") == 0) {
            sets[0]->unite(*sets[1]);
            std::puts("ok");
            continue;
        }
        if (std::strcmp(op, "new") == 0) {
            if (std::scanf("%llu", &value) != 1) return 2;
            for (auto& s : sets) s = std::make_unique<SequenceRuns>(size_t(value));
            std::puts("ok");
            continue;
        }
        if (std::scanf("%3s", which) != 1 || (which[0] != 'A' && which[0] != 'B')) return 2;
        SequenceRuns& s = *sets[which[0] == 'B'];
        if (std::strcmp(op, "show") == 0) {
            std::printf("%zu %llu %llu %llu\n", s.size(), (unsigned long long)s.last_first(),
                        (unsigned long long)s.last(), (unsigned long long)s.forgotten());
            continue;
        }
        if (std::scanf("%llu", &value) != 1) return 2;
        if (std::strcmp(op, "add") == 0) std::printf("%d\n", s.add(value) ? 1 : 0);
        else if (std::strcmp(op, "has") == 0) std::printf("%d\n", s.contains(value) ? 1 : 0);
        else if (std::strcmp(op, "cut") == 0) { s.drop_below(value); std::puts("ok"); }
        else return 2;
    }
    return 0;
}
