// Runs a wasm32-wasip1 program under Node.js's WASI (no runtime to install: Node has it):
//
//     node run_wasi.mjs PROGRAM.wasm DIR [ARGS...]
//
// The program sees DIR (an absolute path) at the same path, and nothing else of the file
// system; it gets ARGS as its arguments. The exit status is the program's.
import { readFile } from "node:fs/promises";
import { argv, env, exit } from "node:process";
import { WASI } from "node:wasi";

const [program, dir, ...args] = argv.slice(2);
if (!program || !dir) {
  console.error("usage: node run_wasi.mjs PROGRAM.wasm DIR [ARGS...]");
  exit(2);
}
const wasi = new WASI({
  version: "preview1",
  args: [program, ...args],
  env,
  preopens: { [dir]: dir },
  returnOnExit: true,
});
const module = await WebAssembly.compile(await readFile(program));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
exit(wasi.start(instance));
