/**
 * Jest's test order for `npm test`: the long lab suites first, longest first, then everything else in jest's
 * own order. Jest orders by the durations it cached on an earlier run; on a fresh machine (CI) it has none and
 * orders by file size, which put the longest suites (small files) last and left one worker idle while the
 * other ran them. With two workers, starting them first is what keeps the whole run short.
 */
const Sequencer = require("@jest/test-sequencer").default;
const path = require("path");

/** Test files by how long they take here (longest first); a file not named keeps jest's order after these. */
const FIRST = [
    "lab-day2.test.ts",
    "lab-day2-ops.test.ts",
    "lab-upgrade.test.ts",
    "lab.test.ts",
    "rolling-run.test.ts",
    "teardown-run.test.ts",
    "preview.test.ts",
    "package.test.ts",
];

class LongestFirst extends Sequencer {
    async sort(tests) {
        const rank = (t) => {
            const i = FIRST.indexOf(path.basename(t.path));
            return i < 0 ? FIRST.length : i;
        };
        const rest = await super.sort(tests);
        return [...rest].sort((a, b) => rank(a) - rank(b));
    }
}

module.exports = LongestFirst;
