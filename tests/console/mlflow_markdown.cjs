// Render markdown (stdin) to HTML (stdout) with the showdown converter MLflow's UI ships in its JS
// bundle, set up as the UI sets it up (github flavour). argv[2]: the bundle chunk that holds it.
const fs = require('fs'), vm = require('vm');
vm.runInThisContext(fs.readFileSync(process.argv[2], 'utf8'));
let showdown = null;
for (const chunk of globalThis.webpackChunk_mlflow_mlflow || []) {
  for (const factory of Object.values(chunk[1])) {
    const mod = {exports: {}};
    try { factory.call(mod.exports, mod, mod.exports, () => ({})); } catch (e) { continue; }
    if (mod.exports && typeof mod.exports.Converter === 'function') { showdown = mod.exports; break; }
  }
}
if (!showdown) { console.error('no showdown converter in ' + process.argv[2]); process.exit(3); }
const converter = new showdown.Converter();
converter.setFlavor('github');
process.stdout.write(converter.makeHtml(fs.readFileSync(0, 'utf8')));
