// What the browser tests share: the stack's accounts, keyboard-only sign-in and submit, and
// the API as the test's independent witness.
import { type APIRequestContext, expect, type Page, test as base, type TestInfo } from "@playwright/test";
import path from "node:path";

export interface Stack {
  base_url: string;
  admin: { email: string; password: string };
  projects: Record<"review" | "pair", { id: number; people: number; masks: number }>;
  annotators: Record<string, string>;
}

export function stack(): Stack {
  const raw = process.env.AA_E2E_STACK;
  if (!raw) throw new Error("AA_E2E_STACK is not set: run through playwright.config.ts (global setup)");
  return JSON.parse(raw) as Stack;
}

/** Every test fails on a Content-Security-Policy violation or an uncaught page error. */
export const test = base.extend<{ pageProblems: string[] }>({
  baseURL: async ({}, use) => use(stack().base_url),
  pageProblems: [
    async ({ context }, use) => {
      const problems: string[] = [];
      context.on("page", (page) => watch(page, problems));
      for (const page of context.pages()) watch(page, problems);
      await use(problems);
      expect(problems, "CSP violations or page errors").toEqual([]);
    },
    { auto: true },
  ],
});

function watch(page: Page, problems: string[]): void {
  page.on("console", (message) => {
    if (/Content Security Policy|Refused to/i.test(message.text())) problems.push(message.text());
  });
  page.on("pageerror", (error) => problems.push(`pageerror: ${error.message}`));
}

export { expect };

/** Signs in by typing: the email field has the focus when the page opens. */
export async function signIn(page: Page, email: string, password: string): Promise<void> {
  await page.goto("/login");
  await expect(page.locator("#email")).toBeFocused();
  await page.keyboard.type(email);
  await page.keyboard.press("Tab");
  await page.keyboard.type(password);
  await page.keyboard.press("Enter");
  await expect(page.locator(".project").first()).toBeVisible();
}

/** From the project list (one project), Enter opens the review screen. */
export async function openReview(page: Page): Promise<number> {
  await page.keyboard.press("Enter");
  await expect(page.getByTestId("assignment-id")).toBeVisible();
  return currentId(page);
}

export async function currentId(page: Page): Promise<number> {
  const id = await page.getByTestId("assignment-id").getAttribute("data-assignment-id");
  return Number(id);
}

/**
 * Picks, with a digit key, the first value of the focused question that is not its current
 * answer. Returns the value's key.
 */
export async function changeFocused(page: Page): Promise<{ category: string; value: string }> {
  const field = page.locator(".field--focused");
  const category = ((await field.getAttribute("data-testid")) ?? "").replace(/^field-/, "");
  const choices = field.locator(".choice");
  const count = await choices.count();
  for (let i = 0; i < Math.min(count, 9); i++) {
    const choice = choices.nth(i);
    if (!((await choice.getAttribute("class")) ?? "").includes("choice--chosen")) {
      const value = ((await choice.getAttribute("data-testid")) ?? "").replace(/^choice-/, "");
      await page.keyboard.press(String(i + 1));
      return { category, value };
    }
  }
  throw new Error(`no other value to pick for ${category}`);
}

/**
 * Enter submits; when a question has no answer yet the screen focuses it instead, and the
 * first value is picked for it. Returns once another assignment (or the empty queue) shows.
 */
export async function submitWithKeyboard(page: Page): Promise<void> {
  const id = await currentId(page);
  for (let i = 0; i < 100; i++) {
    const missing = Number(await page.getByTestId("review").getAttribute("data-missing"));
    await page.keyboard.press("Enter");
    if (missing === 0) {
      await expect(page.getByTestId("assignment-id").or(page.getByTestId("queue-empty"))).toBeVisible();
      await expect
        .poll(async () => ((await page.getByTestId("assignment-id").count()) ? await currentId(page) : -1))
        .not.toBe(id);
      return;
    }
    await page.keyboard.press("1");
  }
  throw new Error(`assignment ${id}: still questions without an answer after 100 tries`);
}

export interface LabelView {
  value: unknown;
  version: number;
  state: string;
}

/** A category (`region.key`) of an assignment with its current label, read through the API. */
export async function categoryOf(
  request: APIRequestContext,
  assignmentId: number,
  category: string,
): Promise<{ id: number; label: LabelView | null }> {
  const response = await request.get(`/api/v1/assignments/${assignmentId}`);
  expect(response.status(), await response.text()).toBe(200);
  const body = (await response.json()) as { categories: { id: number; key: string; region: string; label: LabelView | null }[] };
  const found = body.categories.find((c) => (c.key.includes(".") ? c.key : `${c.region}.${c.key}`) === category);
  if (!found) throw new Error(`assignment ${assignmentId} has no category ${category}`);
  return found;
}

export async function labelOf(request: APIRequestContext, assignmentId: number, category: string): Promise<LabelView | null> {
  return (await categoryOf(request, assignmentId, category)).label;
}

export async function stats(request: APIRequestContext, projectId: number): Promise<{ queued: number; mine_submitted: number }> {
  const response = await request.get(`/api/v1/projects/${projectId}/assignments/stats`);
  expect(response.status()).toBe(200);
  return (await response.json()) as { queued: number; mine_submitted: number };
}

/** Saves a screenshot under test-results/ as `<prefix>-<name>.png` and says where it is. */
export async function screenshot(
  page: Page,
  testInfo: TestInfo,
  name: string,
  { prefix = "review", fullPage = false }: { prefix?: string; fullPage?: boolean } = {},
): Promise<string> {
  const file = path.join(path.dirname(testInfo.outputDir), `${prefix}-${name}.png`);
  await page.screenshot({ path: file, fullPage });
  await testInfo.attach(`${prefix}-${name}`, { path: file, contentType: "image/png" });
  console.log(`screenshot: ${file}`);
  return file;
}

/**
 * Console errors and server errors, collected for the test to assert on. Chromium logs every 4xx
 * the app meets as a console error; an expected 4xx (the session probe before sign-in, an invalid
 * upload, a used invite) is an answer the page shows, so a 4xx counts only through what the page
 * does with it.
 */
export function consoleErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error" && !/^Failed to load resource: the server responded with a status of 4\d\d/.test(m.text())) {
      errors.push(m.text());
    }
  });
  page.on("response", (r) => {
    if (r.status() >= 500) errors.push(`${r.status()} ${r.request().method()} ${r.url()}`);
  });
  return errors;
}

/** Opens a dashboard section from the side navigation and waits until it has loaded. */
export async function openSection(page: Page, name: string): Promise<void> {
  await page.getByTestId(`nav-${name}`).click();
  await expect(page.getByTestId(`dashboard-${name}`)).toBeVisible();
  await expect(page.getByText("loading…")).toHaveCount(0);
}

/** How many pixels of the parsing overlay are painted (0 when there is no overlay). */
export async function overlayPixels(page: Page): Promise<number> {
  return page.evaluate(() => {
    const canvas = document.querySelector<HTMLCanvasElement>("[data-testid=parsing-overlay]");
    const context = canvas?.getContext("2d");
    if (!canvas || !context) return 0;
    const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
    let painted = 0;
    for (let i = 3; i < data.length; i += 4) if ((data[i] ?? 0) > 0) painted++;
    return painted;
  });
}

/** Moves the focus with Tab until the question `category` (`region.key`) has it. */
export async function tabTo(page: Page, category: string): Promise<void> {
  for (let i = 0; i < 120; i++) {
    if ((await page.locator(".field--focused").getAttribute("data-testid")) === `field-${category}`) return;
    await page.keyboard.press("Tab");
  }
  throw new Error(`never reached ${category} with Tab`);
}
