// Every string a person types renders as text: a script-payload corpus (tests/web/stack.py
// XSS_PAYLOADS) sits in project, taxonomy (region names, questions, value labels, captions,
// caption nouns), file, source, licence and person names, the URL list's URLs and a skip reason.
// Each payload calls `__xss(id)` if it ever runs. The tour visits every page that shows them
// twice: once under the server's Content-Security-Policy (nothing blocked, nothing run), once
// with the CSP bypassed, which shows that the UI itself never turns a string into markup.
import type { Browser, BrowserContext, Page, TestInfo } from "@playwright/test";
import { expect, openSection, screenshot, signIn, stack, test } from "./helpers";

interface Account {
  email: string;
  password: string;
}

interface Xss {
  id: number;
  name: string;
  lead: Account;
  annotator: Account;
  payloads: string[];
  project_names: string[];
  invite_status: number;
  webhook_status: number;
}

function xss(): Xss {
  const found = (stack() as unknown as { xss?: Xss }).xss;
  if (!found) throw new Error("the stack has no xss project (tests/web/stack.py _seed_xss)");
  return found;
}

/** What ran or tried to: payload ids, dialogs, CSP refusals, page errors, dangerous DOM. */
interface Witness {
  fired: string[];
  dialogs: string[];
  refused: string[];
  dom: string[];
}

// Runs in every document before the app: records any node or attribute that could run script.
const DOM_WATCH = `(() => {
  const seen = (window.__xssDom = []);
  const risky = (el) => {
    if (!(el instanceof Element)) return;
    const tag = el.tagName.toLowerCase();
    if (tag === "script" && !el.src) seen.push("inline script: " + el.textContent.slice(0, 80));
    if (["iframe", "object", "embed", "frame"].includes(tag)) seen.push("element: " + tag);
    for (const attr of Array.from(el.attributes)) {
      const v = attr.value.trim().toLowerCase();
      if (attr.name.startsWith("on")) seen.push("handler " + attr.name + " on " + tag);
      if (["href", "src", "action", "formaction", "srcdoc", "xlink:href"].includes(attr.name) &&
          (v.startsWith("javascript:") || v.startsWith("data:text/html") || attr.name === "srcdoc")) {
        seen.push(attr.name + "=" + v.slice(0, 80) + " on " + tag);
      }
    }
  };
  new MutationObserver((records) => {
    for (const r of records) {
      if (r.type === "attributes") risky(r.target);
      for (const node of Array.from(r.addedNodes)) {
        risky(node);
        if (node instanceof Element) node.querySelectorAll("*").forEach(risky);
      }
    }
  }).observe(document, { subtree: true, childList: true, attributes: true });
})();`;

async function armed(browser: Browser, bypassCSP: boolean): Promise<{ context: BrowserContext; witness: Witness }> {
  const context = await browser.newContext({ baseURL: stack().base_url, bypassCSP });
  const witness: Witness = { fired: [], dialogs: [], refused: [], dom: [] };
  await context.exposeFunction("__xss", (id: unknown) => {
    witness.fired.push(String(id));
  });
  await context.addInitScript(DOM_WATCH);
  const watch = (page: Page): void => {
    page.on("dialog", (dialog) => {
      witness.dialogs.push(`${dialog.type()}: ${dialog.message()}`);
      void dialog.dismiss();
    });
    page.on("console", (message) => {
      if (/Content Security Policy|Refused to/i.test(message.text())) witness.refused.push(message.text());
    });
    page.on("pageerror", (error) => witness.refused.push(`pageerror: ${error.message}`));
  };
  context.on("page", watch);
  return { context, witness };
}

async function domProblems(page: Page): Promise<string[]> {
  return page.evaluate(() => [...((window as unknown as { __xssDom?: string[] }).__xssDom ?? [])]);
}


async function section(page: Page, witness: Witness, name: string): Promise<void> {
  await openSection(page, name);
  witness.dom.push(...(await domProblems(page)));
}

/** The lead's tour: project list, then every dashboard panel. Returns what each page showed. */
async function leadTour(context: BrowserContext, witness: Witness, testInfo: TestInfo, tag: string): Promise<void> {
  const { id, name, lead, project_names, payloads } = xss();
  const page = await context.newPage();
  await signIn(page, lead.email, lead.password);
  const list = page.getByTestId("projects");
  for (const projectName of [name, ...project_names]) await expect(list).toContainText(projectName);
  witness.dom.push(...(await domProblems(page)));
  if (tag === "csp") await screenshot(page, testInfo, "projects", { prefix: "xss", fullPage: true });

  await page.goto(`/projects/${id}/dashboard`);
  await expect(page.getByTestId("dashboard-funnel")).toBeVisible();
  await expect(page.getByText("loading…")).toHaveCount(0);
  await expect(page.locator("body")).toContainText(name);
  const sources = (await (await page.request.get(`/api/v1/projects/${id}/sources`)).json()) as {
    name: string;
    licence: string;
    consent: string;
  }[];
  const listed = sources.find((s) => s.name !== "uploads");
  if (!listed) throw new Error("the xss project has no URL-list source");
  await expect(page.getByTestId("dashboard-funnel")).toContainText(listed.name);
  witness.dom.push(...(await domProblems(page)));
  if (tag === "csp") await screenshot(page, testInfo, "funnel", { prefix: "xss", fullPage: true });

  await section(page, witness, "flywheel");
  await section(page, witness, "work");
  // The annotator reviewed through the API; their display name is a payload.
  await expect(page.getByTestId("annotators-table")).toContainText(payloads[3] ?? "");
  await expect(page.locator(".topbar__user")).toContainText(payloads[2] ?? "");
  if (tag === "csp") await screenshot(page, testInfo, "work", { prefix: "xss", fullPage: true });
  await section(page, witness, "models");

  await section(page, witness, "taxonomy");
  const tree = (await (await page.request.get(`/api/v1/projects/${id}/taxonomy`)).json()) as {
    regions: { name: string; categories: { question: string; values: { label: string }[] }[] }[];
  };
  const shown = page.getByTestId("taxonomy-tree");
  for (const region of tree.regions) {
    await expect(shown).toContainText(region.name);
    for (const category of region.categories) {
      await expect(shown).toContainText(category.question);
      for (const value of category.values) await expect(shown).toContainText(value.label);
    }
  }
  // An invalid upload: the errors the page lists quote the payloads back.
  const bad = JSON.stringify({ name: "bad", description: payloads[0], caption_groups: [], regions: [{ key: payloads[1], name: payloads[2] }] });
  await page.getByTestId("taxonomy-yaml").fill(bad);
  await page.getByTestId("taxonomy-submit").click();
  await expect(page.getByTestId("taxonomy-errors")).toBeVisible();
  witness.dom.push(...(await domProblems(page)));
  if (tag === "csp") await screenshot(page, testInfo, "taxonomy", { prefix: "xss", fullPage: true });

  await section(page, witness, "sources");
  const table = page.getByTestId("sources");
  for (const text of [listed.name, listed.licence, listed.consent]) await expect(table).toContainText(text);
  const rejections = (await (await page.request.get(`/api/v1/projects/${id}/rejections`)).json()) as { name: string }[];
  expect(rejections.length).toBeGreaterThanOrEqual(4);
  for (const r of rejections) await expect(page.getByTestId("rejections")).toContainText(r.name);
  if (tag === "csp") await screenshot(page, testInfo, "sources", { prefix: "xss", fullPage: true });

  await section(page, witness, "exports");
  await expect(page.getByTestId("export-form")).toContainText(listed.name);
  await page.getByTestId("exports").getByRole("button", { name: "Manifest" }).first().click();
  await expect(page.getByTestId("manifest-link")).toBeVisible({ timeout: 30_000 });
  witness.dom.push(...(await domProblems(page)));
  if (tag === "csp") await screenshot(page, testInfo, "exports", { prefix: "xss", fullPage: true });

  await section(page, witness, "people");
  const members = page.getByTestId("members");
  await expect(members).toContainText(payloads[2] ?? "");
  await expect(members).toContainText(payloads[3] ?? "");
  if (tag === "csp") await screenshot(page, testInfo, "people", { prefix: "xss", fullPage: true });
  witness.dom.push(...(await domProblems(page)));
  await page.close();
}

/** The annotator's tour: the review screen (taxonomy strings, caption), help, a skip reason. */
async function annotatorTour(context: BrowserContext, witness: Witness, testInfo: TestInfo, tag: string): Promise<void> {
  const { id, name, annotator, payloads } = xss();
  const page = await context.newPage();
  await signIn(page, annotator.email, annotator.password);
  await expect(page.getByTestId("projects")).toContainText(name);
  await page.goto(`/projects/${id}/review`);
  await expect(page.getByTestId("assignment-id")).toBeVisible();
  const assignmentId = Number(await page.getByTestId("assignment-id").getAttribute("data-assignment-id"));
  const assignment = (await (await page.request.get(`/api/v1/assignments/${assignmentId}`)).json()) as {
    categories: { region_name: string; question: string; values: { label: string }[] }[];
  };
  const fields = page.getByTestId("fields");
  for (const category of assignment.categories) {
    await expect(fields).toContainText(category.region_name);
    await expect(fields).toContainText(category.question);
  }
  await expect(page.getByTestId("caption")).toContainText("__xss(");
  await page.keyboard.press("?");
  await expect(page.getByTestId("help")).toBeVisible();
  await page.keyboard.press("?");
  if (tag === "csp") await screenshot(page, testInfo, "review", { prefix: "xss", fullPage: true });
  // A skip reason is the annotator's note to the lead.
  await page.keyboard.press("s");
  await expect(page.getByTestId("skip-prompt")).toBeVisible();
  const reason = `${payloads[tag === "csp" ? 9 : 13] ?? ""} ${payloads[0] ?? ""}`;
  await page.keyboard.insertText(reason);
  await page.keyboard.press("Enter");
  await expect(page.getByTestId("notice")).toContainText(reason);
  witness.dom.push(...(await domProblems(page)));
  if (tag === "csp") await screenshot(page, testInfo, "skipped", { prefix: "xss", fullPage: true });
  await page.close();
}

test("the app shell is served with an enforced CSP and nosniff", async ({ request }) => {
  const { id } = xss();
  for (const url of ["/", "/login", `/projects/${id}/review`, `/projects/${id}/dashboard/people`]) {
    const response = await request.get(url);
    expect(response.status(), url).toBe(200);
    const headers = response.headers();
    const csp = headers["content-security-policy"] ?? "";
    expect(csp, url).toContain("script-src 'self'");
    expect(csp, url).toContain("object-src 'none'");
    expect(csp, url).not.toMatch(/unsafe-inline|unsafe-eval/);
    expect(headers["content-security-policy-report-only"], url).toBeUndefined();
    expect(headers["x-content-type-options"], url).toBe("nosniff");
  }
});

test("the API never accepts a payload as an email; a webhook URL is kept as an opaque string", () => {
  const { invite_status, webhook_status } = xss();
  expect(invite_status).toBe(422);
  expect([201, 422]).toContain(webhook_status);
});

for (const mode of ["csp", "no-csp"] as const) {
  test(`no payload runs on any page (${mode === "csp" ? "under the CSP" : "with the CSP bypassed"})`, async ({ browser }, testInfo) => {
    test.setTimeout(180_000);
    // One context per person: each signs in with their own session.
    const witness: Witness = { fired: [], dialogs: [], refused: [], dom: [] };
    for (const tour of [leadTour, annotatorTour]) {
      const armedContext = await armed(browser, mode === "no-csp");
      try {
        await tour(armedContext.context, armedContext.witness, testInfo, mode);
        // Give anything deferred (onload, ontoggle, timers) a moment to fire.
        await new Promise((resolve) => setTimeout(resolve, 500));
      } finally {
        await armedContext.context.close();
        for (const key of ["fired", "dialogs", "refused", "dom"] as const) witness[key].push(...armedContext.witness[key]);
      }
    }
    expect(witness.fired, "payloads that ran").toEqual([]);
    expect(witness.dialogs, "dialogs opened").toEqual([]);
    expect(witness.dom, "markup that could run script").toEqual([]);
    expect(witness.refused, "CSP refusals and page errors").toEqual([]);
  });
}

test("the witness catches a payload that does run (the tour's control)", async ({ browser }) => {
  const { payloads } = xss();
  const { context, witness } = await armed(browser, true);
  try {
    const page = await context.newPage();
    await page.goto("/login");
    await expect(page.locator("#email")).toBeVisible();
    // What a UI that put a string into innerHTML would do.
    await page.evaluate((html) => {
      document.body.insertAdjacentHTML("beforeend", html);
    }, payloads[1] ?? "");
    await expect.poll(() => witness.fired).toEqual(["x01"]);
    expect(await domProblems(page)).toContain("handler onerror on img");
  } finally {
    await context.close();
  }
});
