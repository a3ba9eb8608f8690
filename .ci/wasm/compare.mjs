// Compares two prediction files of the `predict_only` example, line by line:
//
//     node compare.mjs EXPECTED ACTUAL TOLERANCE
//
// Each line is a label followed by probabilities, or a value, comma-separated. Labels must be
// equal; numbers may differ by at most TOLERANCE times the larger magnitude, or times 1 below 1
// (0: the same bits). Prints how many numbers differ and by how much, in units in the last place of an f32
// where they are probabilities; exits 1 when a line breaks the rule.
import { readFileSync } from "node:fs";
import { argv, exit } from "node:process";

const [expectedPath, actualPath, toleranceText] = argv.slice(2);
const tolerance = Number(toleranceText);
const lines = (p) => readFileSync(p, "utf8").split("\n").filter((l) => l !== "");
const [expected, actual] = [lines(expectedPath), lines(actualPath)];
const f32Bits = (x) => new Int32Array(new Float32Array([x]).buffer)[0];

// No prediction at all is a failure, not an agreement.
let bad = expected.length !== actual.length || expected.length === 0;
let differ = 0, maxRelative = 0, maxUlp = 0, count = 0;
for (let i = 0; i < Math.min(expected.length, actual.length); i++) {
  const [e, a] = [expected[i].split(","), actual[i].split(",")];
  const labelled = e.length > 1;
  if (e.length !== a.length || (labelled && e[0] !== a[0])) {
    bad = true;
    continue;
  }
  for (let j = labelled ? 1 : 0; j < e.length; j++) {
    const [x, y] = [Number(e[j]), Number(a[j])];
    count++;
    if (e[j] === a[j]) continue;
    differ++;
    const relative = Math.abs(x - y) / Math.max(Math.abs(x), Math.abs(y), 1);
    maxRelative = Math.max(maxRelative, relative);
    if (labelled) maxUlp = Math.max(maxUlp, Math.abs(f32Bits(x) - f32Bits(y)));
    if (!(relative <= tolerance)) bad = true;
  }
}
const ulp = maxUlp > 0 ? `, at most ${maxUlp} f32 ulp` : "";
console.log(
  `${expected.length} rows, ${differ} of ${count} numbers differ` +
    (differ > 0 ? ` (difference at most ${maxRelative.toExponential(2)} of max(|value|, 1)${ulp})` : "") +
    (bad ? `: more than the tolerance ${tolerance}, or a label or row differs` : ""),
);
exit(bad ? 1 : 0);
