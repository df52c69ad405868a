// Starts the real stack once for every browser test (tests/web/stack.py) and stops it after.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";

const ROOT = path.resolve(import.meta.dirname, "..", "..");

export default async function globalSetup(): Promise<() => Promise<void>> {
  const python = process.env.AA_PYTHON ?? path.join(ROOT, ".venv", "bin", "python");
  if (!existsSync(python)) throw new Error(`no Python at ${python}: run make install-dev (or set AA_PYTHON)`);
  const stack = spawn(python, ["-m", "tests.web.stack"], {
    cwd: ROOT,
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines = createInterface({ input: stack.stdout });
  const info = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the stack did not start within 180 s")), 180_000);
    stack.once("exit", (code) => reject(new Error(`tests.web.stack exited with ${code} before it was ready`)));
    lines.on("line", (line) => {
      if (line.startsWith("AA_STACK ")) {
        clearTimeout(timer);
        resolve(line.slice("AA_STACK ".length));
      } else {
        process.stdout.write(`[stack] ${line}\n`);
      }
    });
  });
  process.env.AA_E2E_STACK = info;
  process.env.AA_E2E_BASE_URL = (JSON.parse(info) as { base_url: string }).base_url;

  return async () => {
    if (stack.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => stack.once("exit", () => resolve()));
    stack.kill("SIGTERM");
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 15_000))]);
    if (stack.exitCode === null) stack.kill("SIGKILL");
  };
}
