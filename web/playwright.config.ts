import { defineConfig } from "@playwright/test";

// Browser tests against the real stack (tests/web/stack.py): headless Chromium from the system,
// never a downloaded browser.
const chromium = process.env.AA_CHROMIUM ?? "/usr/bin/chromium";

export default defineConfig({
  testDir: ".",
  // e2e/: the browser against the real stack; src/**/*.test.ts: pure rules, no browser.
  testMatch: ["e2e/**/*.spec.ts", "src/**/*.test.ts"],
  outputDir: "test-results",
  globalSetup: "./e2e/global-setup.ts",
  fullyParallel: false,
  workers: 1,
  retries: 0,
  timeout: 60_000,
  expect: { timeout: 10_000 },
  reporter: [["list"]],
  use: {
    browserName: "chromium",
    viewport: { width: 1440, height: 900 },
    launchOptions: {
      executablePath: chromium,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    },
    trace: "retain-on-failure",
    screenshot: "only-on-failure",
  },
});
