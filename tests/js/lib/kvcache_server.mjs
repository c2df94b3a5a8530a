// Shared setup of the end-to-end tests: finds the kvcache binary, makes a model, starts
// `kvcache serve` on a free loopback port and stops it. A test whose prerequisites are missing
// (npm packages, chromium) calls skip(), which exits 77: CTest reports it as skipped.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

export const binDir = process.env.KVC_BIN_DIR ?? path.resolve('build/bin');
export const kvcacheBin = path.join(binDir, 'kvcache');
export const sharedDir = process.env.KVC_SHARED_DIR ?? path.resolve('../shared');
export const artifactDir = process.env.KVC_ARTIFACT_DIR ?? path.resolve('build/test-artifacts');

export function skip(why) {
  console.log(`SKIPPED: ${why}`);
  process.exit(77);
}

// Resolves an npm package installed in tests/js/node_modules, or skips the test.
export async function requirePackage(name) {
  const require = createRequire(import.meta.url);
  try {
    require.resolve(name);
  } catch {
    skip(`npm package '${name}' is not installed (run scripts/install-deps.sh)`);
  }
  return import(name);
}

// A synthetic model of a preset shape (random weights, generated vocabulary), made once per
// artifact directory.
export function synthModel(preset = 'tiny', type = 'Q8_0') {
  mkdirSync(artifactDir, { recursive: true });
  const file = path.join(artifactDir, `synth-${preset}-${type}.gguf`);
  if (!existsSync(file)) {
    execFileSync(kvcacheBin, ['synth', '--preset', preset, '--type', type, '-o', file], { stdio: 'inherit' });
  }
  return file;
}

// stories260K from ../shared (a real trained model: its answers are readable text), or null.
export function storiesModel() {
  const file = path.join(sharedDir, 'models', 'stories260K.gguf');
  return existsSync(file) ? file : null;
}

// Starts `kvcache serve -m model --port 0 ...args` and resolves once /health answers.
// Returns { url, baseURL, proc, log(), stop() }.
export async function startServer(model, args = [], { timeoutMs = 60000 } = {}) {
  if (!existsSync(kvcacheBin)) throw new Error(`${kvcacheBin} not found: build first`);
  const proc = spawn(kvcacheBin, ['serve', '-m', model, '--host', '127.0.0.1', '--port', '0', ...args],
                     { stdio: ['ignore', 'inherit', 'pipe'] });
  let stderr = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in ${timeoutMs} ms:\n${stderr}`)), timeoutMs);
    proc.stderr.on('data', (d) => {
      stderr += d.toString();
      const m = stderr.match(/on (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited (${code}):\n${stderr}`)); });
  });
  proc.removeAllListeners('exit');
  for (let i = 0; ; ++i) {
    try {
      if ((await fetch(`${url}/health`)).ok) break;
    } catch (e) {
      if (i > 200) throw e;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const exited = new Promise((r) => proc.on('exit', (code, signal) => r({ code, signal })));
  return {
    url,
    baseURL: `${url}/v1`,
    proc,
    log: () => stderr,
    // SIGTERM, then the exit status; a server that crashed earlier shows up here too.
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const r = await exited;
      if (r.code !== 0) throw new Error(`server exit ${JSON.stringify(r)}:\n${stderr}`);
    },
  };
}
