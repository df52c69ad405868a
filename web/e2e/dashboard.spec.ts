// The data lead's dashboard against the real stack: every page with data, charts drawn as SVG
// under the enforced Content-Security-Policy, screenshots named in the report.
import type { Page } from "@playwright/test";
import { consoleErrors, expect, openSection, screenshot, signIn, stack, test } from "./helpers";

interface Board {
  id: number;
  people: number;
  reviewed: number;
  lead: { email: string; password: string };
  annotator: string;
}

function board(): Board {
  const found = (stack() as unknown as { board?: Board }).board;
  if (!found) throw new Error("the stack has no board project (tests/web/stack.py _seed_board)");
  return found;
}




async function chartDrawn(page: Page, testId: string): Promise<void> {
  const surface = page.getByTestId(testId).locator("svg.recharts-surface").first();
  await expect(surface).toBeVisible();
  expect(await page.getByTestId(testId).locator("svg.recharts-surface path, svg.recharts-surface rect").count()).toBeGreaterThan(0);
}

test("the lead sees funnel, flywheel, work, models, taxonomy, sources and exports with data", async ({ page }, testInfo) => {
  const { id, people, reviewed, lead, annotator } = board();
  const errors = consoleErrors(page);
  await signIn(page, lead.email, lead.password);
  await page.goto(`/projects/${id}/review`);
  await page.getByTestId("topbar-dashboard").click();
  await expect(page.getByTestId("dashboard-funnel")).toBeVisible();

  // Funnel: the page shows the API's figures (tests/server/dashboard checks those against the
  // tables); the stack uploaded, reviewed and exported, so every stage has subjects.
  const funnel = (await (await page.request.get(`/api/v1/projects/${id}/dashboard/funnel`)).json()) as {
    project: { stages: { key: string; count: number }[] };
  };
  const counts = Object.fromEntries(funnel.project.stages.map((s) => [s.key, s.count]));
  expect(counts.ingested).toBe(people);
  for (const key of ["prelabeled", "routed", "verified", "exported"]) expect(counts[key]).toBeGreaterThan(0);
  for (const [key, n] of Object.entries(counts)) await expect(page.getByTestId(`funnel-${key}`)).toContainText(String(n));
  await chartDrawn(page, "funnel-chart");
  await expect(page.getByTestId("funnel-chart").locator(".recharts-bar-rectangle")).toHaveCount(5);
  await screenshot(page, testInfo, "funnel", { prefix: "dashboard", fullPage: true });

  await openSection(page, "flywheel");
  await expect(page.getByTestId("fw-macro")).toBeVisible();
  // The activity says when it was counted (the beat stores it for a large project).
  await expect(page.getByTestId("fw-share")).toContainText("counted");
  // The stack answered an evaluation set and ran a round: accuracy per category and round.
  await chartDrawn(page, "fw-rounds-chart");
  expect(await page.getByTestId("fw-rounds-chart").locator(".recharts-line-dots circle").count()).toBeGreaterThan(0);
  await chartDrawn(page, "fw-share-chart");
  const flywheel = (await (await page.request.get(`/api/v1/projects/${id}/flywheel`)).json()) as { categories: unknown[] };
  if (flywheel.categories.length > 0) await chartDrawn(page, "fw-categories-chart");
  else await expect(page.getByTestId("fw-categories-chart")).toContainText("No category scored yet");
  await screenshot(page, testInfo, "flywheel", { prefix: "dashboard", fullPage: true });

  await openSection(page, "work");
  await chartDrawn(page, "work-depth");
  await chartDrawn(page, "work-throughput");
  await expect(page.getByTestId("submitted-total")).toContainText(String(reviewed));
  const row = page.getByTestId("annotators-table").locator("tr", { hasText: annotator });
  await expect(row).toContainText(String(reviewed));
  await screenshot(page, testInfo, "work", { prefix: "dashboard", fullPage: true });

  await openSection(page, "models");
  await expect(page.getByTestId("versions").locator("tbody tr", { hasText: "active" })).toHaveCount(1);
  await expect(page.getByTestId("rounds").locator("tbody tr")).toHaveCount(1);
  await chartDrawn(page, "models-compare");
  await expect(page.getByTestId("models-compare").locator(".recharts-bar-rectangle").first()).toBeVisible();
  await expect(page.getByTestId("start-round")).toBeEnabled();
  await screenshot(page, testInfo, "models", { prefix: "dashboard", fullPage: true });

  await openSection(page, "taxonomy");
  await expect(page.getByTestId("taxonomy-tree").locator("[role=treeitem]").first()).toBeVisible();
  const bad = [
    "name: bad",
    "regions:",
    "  - key: top",
    "    name: Top",
    "    categories:",
    "      - key: color",
    "        question: Colour?",
    "        kind: single",
    "        values:",
    "          - key: red",
    "            label: Red",
    "          - key: red",
    "            label: Red again",
  ].join("\n");
  await page.getByTestId("taxonomy-yaml").fill(bad);
  await page.getByTestId("taxonomy-submit").click();
  const errorsList = page.getByTestId("taxonomy-errors");
  await expect(errorsList.locator(".errors__item", { hasText: "duplicate value key" }).locator(".errors__path")).toHaveText(
    "regions[0].categories[0].values[1].key",
  );
  await screenshot(page, testInfo, "taxonomy", { prefix: "dashboard", fullPage: true });

  await openSection(page, "sources");
  await expect(page.getByTestId("sources")).toContainText("uploads");
  await expect(page.getByTestId("runs").locator("tbody tr").first()).toContainText("succeeded");
  const urlForm = page.getByTestId("url-list-form");
  await urlForm.getByLabel("URL list file").setInputFiles({
    name: "people.csv",
    mimeType: "text/csv",
    buffer: Buffer.from("url\nhttps://example.com/a.jpg\n"),
  });
  await urlForm.locator("input[name=url-name]").fill("web people");
  await urlForm.getByRole("button", { name: "Add URL list" }).click();
  await expect(page.getByTestId("sources").locator("tr", { hasText: "web people" })).toContainText("url_list");
  await screenshot(page, testInfo, "sources", { prefix: "dashboard", fullPage: true });

  await openSection(page, "exports");
  const exportsTable = page.getByTestId("exports");
  const before = await exportsTable.locator("tbody tr").count();
  expect(before).toBeGreaterThan(0);
  await page.getByTestId("export-create").click();
  await expect(exportsTable.locator("tbody tr")).toHaveCount(before + 1);
  const detail = page.getByTestId("export-detail");
  await expect(detail.getByTestId("manifest-link")).toBeVisible({ timeout: 30_000 });
  await expect(detail.getByTestId("export-files").locator("tbody tr").first()).toBeVisible();
  const href = await detail.getByTestId("manifest-link").getAttribute("href");
  const manifest = await page.request.get(href ?? "");
  expect(manifest.status()).toBe(200);
  const said = (await manifest.json()) as { export_id: number; counts: { subjects: number }; include_sensitive: boolean };
  expect(said.counts.subjects).toBe(counts.verified);
  // The card says what the manifest does: whether sensitive categories went out.
  await expect(detail.getByTestId("export-sensitive")).toHaveText(
    `${said.include_sensitive ? "with" : "without"} sensitive categories`,
  );
  await expect(detail.getByTestId("export-note")).toHaveCount(0);
  await screenshot(page, testInfo, "exports", { prefix: "dashboard", fullPage: true });
  // Nothing changed since that export: one of what changed since it holds no sample, and says why.
  await page.getByTestId("export-form").getByLabel("only changed since export").selectOption(String(said.export_id));
  await page.getByTestId("export-create").click();
  await expect(exportsTable.locator("tbody tr")).toHaveCount(before + 2);
  await expect(detail.getByTestId("export-note")).toContainText(
    `No subject had a label in the chosen states (verified) as of the snapshot among those its filters kept (changed since export ${said.export_id})`,
    { timeout: 30_000 },
  );

  expect(errors, "console errors").toEqual([]);
});

test("a lead invites someone, who joins through the link and shows up as a member", async ({ page, browser }, testInfo) => {
  const { id, lead } = board();
  await signIn(page, lead.email, lead.password);
  const probe = await page.request.get(`/api/v1/projects/${id}/invites`);
  test.skip(probe.status() === 404 || probe.status() === 405, "the invites API (server/invites) is not mounted yet");
  const errors = consoleErrors(page);
  await page.goto(`/projects/${id}/dashboard/people`);
  await expect(page.getByTestId("dashboard-people")).toBeVisible();
  const email = `invited-${Date.now()}@example.com`;
  await page.getByLabel("email").fill(email);
  await page.getByTestId("invite-create").click();
  const url = (await page.getByTestId("invite-url").textContent()) ?? "";
  expect(url).toMatch(/\/invite\/[A-Za-z0-9_-]+$/);
  await expect(page.getByTestId("invites").locator("tr", { hasText: email })).toHaveAttribute("data-state", "open");
  await screenshot(page, testInfo, "people", { prefix: "dashboard", fullPage: true });

  const stranger = await browser.newContext();
  const invitee = await stranger.newPage();
  const inviteeErrors = consoleErrors(invitee);
  await invitee.goto(url);
  await expect(invitee.getByTestId("invite-preview")).toContainText("E2E board");
  await invitee.locator("#display-name").fill("Invited Person");
  await invitee.locator("#new-password").fill("invited person password");
  await invitee.getByRole("button", { name: "Join" }).click();
  await expect(invitee.locator(".project", { hasText: "E2E board" })).toBeVisible();
  // Single use: the same link now says so.
  await invitee.goto(url);
  await expect(invitee.getByRole("alert")).toContainText("used, revoked or has expired");
  await stranger.close();

  await page.reload();
  await expect(page.getByTestId("members")).toContainText(email);
  await expect(page.getByTestId("invites").locator("tr", { hasText: email })).toHaveAttribute("data-state", "used");
  expect([...errors, ...inviteeErrors], "console errors").toEqual([]);
});
