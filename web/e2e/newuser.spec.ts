// A new person's first day, all in the browser: a lead invites an annotator, who joins through the
// link and reviews with the keyboard; the lead sees the work on the dashboard and exports it.
import { changeFocused, consoleErrors, expect, openReview, openSection, screenshot, signIn, stack, submitWithKeyboard, test } from "./helpers";

interface NewUser {
  id: number;
  name: string;
  people: number;
  lead: { email: string; password: string };
}

function project(): NewUser {
  const found = (stack() as unknown as { newuser?: NewUser }).newuser;
  if (!found) throw new Error("the stack has no newuser project (tests/web/stack.py _seed_newuser)");
  return found;
}




test("a lead invites an annotator, who reviews; the lead sees the work and exports it", async ({ page, browser }, testInfo) => {
  test.setTimeout(150_000);
  const { id, name, lead } = project();
  const errors = consoleErrors(page);

  // 1. The lead invites someone from the People panel.
  await signIn(page, lead.email, lead.password);
  await page.getByTestId(`project-${id}`).click();
  await page.getByTestId("topbar-dashboard").click();
  await expect(page.getByTestId("dashboard-funnel")).toBeVisible();
  await openSection(page, "people");
  const email = `newcomer-${Date.now()}@example.com`;
  await page.getByLabel("email", { exact: true }).fill(email);
  await page.getByLabel("role", { exact: true }).selectOption("annotator");
  await page.getByTestId("invite-create").click();
  const url = (await page.getByTestId("invite-url").textContent()) ?? "";
  expect(url).toMatch(/\/invite\/[A-Za-z0-9_-]+$/);
  await expect(page.getByTestId("invites").locator("tr", { hasText: email })).toHaveAttribute("data-state", "open");
  await screenshot(page, testInfo, "1-invite", { prefix: "newuser", fullPage: true });

  // 2. The invitee opens the link in their own browser and signs up.
  const theirs = await browser.newContext({ baseURL: stack().base_url });
  try {
    const invitee = await theirs.newPage();
    const inviteeErrors = consoleErrors(invitee);
    await invitee.goto(url);
    await expect(invitee.getByTestId("invite-preview")).toContainText(name);
    await expect(invitee.getByTestId("invite-preview")).toContainText("annotator");
    await screenshot(invitee, testInfo, "2-invite-page", { prefix: "newuser", fullPage: true });
    await invitee.locator("#display-name").fill("Nora Newcomer");
    await invitee.locator("#new-password").fill("newcomer's own password");
    await invitee.getByRole("button", { name: "Join" }).click();
    await expect(invitee.locator(".project", { hasText: name })).toBeVisible();
    await expect(invitee.locator(".topbar__user")).toHaveText("Nora Newcomer");
    await screenshot(invitee, testInfo, "3-joined", { prefix: "newuser", fullPage: true });

    // 3. They review with the keyboard only: Enter opens the queue, a digit changes a value,
    //    Enter submits; the second is accepted as pre-filled.
    const first = await openReview(invitee);
    await expect(invitee.locator(".field--focused")).toBeVisible();
    await screenshot(invitee, testInfo, "4-review", { prefix: "newuser", fullPage: true });
    await changeFocused(invitee);
    await submitWithKeyboard(invitee);
    await submitWithKeyboard(invitee);
    await expect(invitee.getByTestId("session-saved")).toHaveText("2");
    await expect(invitee.getByTestId("save-status")).toHaveText("All saved");
    await screenshot(invitee, testInfo, "5-reviewed", { prefix: "newuser", fullPage: true });
    const firstAfter = await invitee.request.get(`/api/v1/assignments/${first}`);
    expect(((await firstAfter.json()) as { status: string }).status).toBe("submitted");
    expect(inviteeErrors, "the invitee's console errors").toEqual([]);
  } finally {
    await theirs.close();
  }

  // 4. The lead sees the newcomer as a member, the invite used, and their work.
  await page.reload();
  await expect(page.getByTestId("members")).toContainText("Nora Newcomer");
  await expect(page.getByTestId("invites").locator("tr", { hasText: email })).toHaveAttribute("data-state", "used");
  await openSection(page, "work");
  await expect(page.getByTestId("submitted-total")).toContainText("2");
  const row = page.getByTestId("annotators-table").locator("tr", { hasText: email });
  await expect(row).toContainText("Nora Newcomer");
  await expect(row).toContainText("annotator");
  await expect(row.locator("td.num").first()).toHaveText("2");
  await row.scrollIntoViewIfNeeded();
  await screenshot(page, testInfo, "6-work", { prefix: "newuser", fullPage: true });

  // 5. The lead exports the verified labels and watches it finish.
  await openSection(page, "exports");
  const table = page.getByTestId("exports");
  const before = await table.locator("tbody tr").count();
  await page.getByTestId("export-create").click();
  await expect(table.locator("tbody tr")).toHaveCount(before + 1);
  const detail = page.getByTestId("export-detail");
  await expect(detail.getByTestId("manifest-link")).toBeVisible({ timeout: 60_000 });
  const exportId = Number(((await detail.locator(".card__title").textContent()) ?? "").replace(/\D+/g, ""));
  const done = table.locator(`[data-testid=export-${exportId}]`);
  await expect(done).toHaveAttribute("data-status", "done");
  await expect(done).toContainText("100%");
  await expect(detail.getByTestId("export-files").locator("tbody tr").first()).toBeVisible();
  const [download] = await Promise.all([page.waitForEvent("download"), detail.getByTestId("manifest-link").click()]);
  expect(download.suggestedFilename()).toBe("manifest.json");
  const manifest = (await (await page.request.get((await detail.getByTestId("manifest-link").getAttribute("href")) ?? "")).json()) as {
    counts: { subjects: number };
  };
  expect(manifest.counts.subjects).toBe(2);
  await screenshot(page, testInfo, "7-export", { prefix: "newuser", fullPage: true });

  expect(errors, "the lead's console errors").toEqual([]);
});
