// Bundles the page into dist/: app.js (the page), capture-worklet.js (the
// AudioWorklet module, loaded by URL, so bundled on its own), index.html and
// style.css. Run after `buf generate` (npm run build does both).
import { copyFile, mkdir, rm } from "node:fs/promises";
import * as esbuild from "esbuild";

const outdir = "dist";

/** @type {esbuild.BuildOptions} */
const common = {
  bundle: true,
  format: "esm",
  minify: true,
  sourcemap: true,
  // Browsers with AudioWorklet, BigInt and ES2020 syntax (protobuf-es needs BigInt).
  target: ["es2020", "chrome90", "firefox90", "safari15"],
  logLevel: "warning",
};

await rm(outdir, { recursive: true, force: true });
await mkdir(outdir, { recursive: true });
await Promise.all([
  esbuild.build({ ...common, entryPoints: ["src/main.ts"], outfile: `${outdir}/app.js` }),
  esbuild.build({
    ...common,
    entryPoints: ["src/capture-worklet.ts"],
    outfile: `${outdir}/capture-worklet.js`,
  }),
  copyFile("index.html", `${outdir}/index.html`),
  copyFile("style.css", `${outdir}/style.css`),
]);
