// The review queue in a real browser against the real API (tests/web/stack.py).
import {
  categoryOf,
  changeFocused,
  currentId,
  expect,
  labelOf,
  openReview,
  overlayPixels,
  screenshot,
  signIn,
  stack,
  stats,
  submitWithKeyboard,
  tabTo,
  test,
} from "./helpers";

const ANNOTATOR = "ann1@example.com";

test("an annotator reviews three images with the keyboard only; the API has them verified", async ({ page }, testInfo) => {
  const { projects, annotators } = stack();
  await signIn(page, ANNOTATOR, annotators[ANNOTATOR] ?? "");
  const before = await stats(page.request, projects.review.id);
  await openReview(page);
  await expect(page.getByText(/1 ready ahead/)).toBeVisible();

  // The focused question's body region is painted from the parsing mask: the whole person for
  // the shot, less for the hair.
  await expect.poll(() => overlayPixels(page)).toBeGreaterThan(0);
  const person = await overlayPixels(page);
  await tabTo(page, "hair.length");
  await expect.poll(() => overlayPixels(page)).toBeLessThan(person);
  expect(await overlayPixels(page)).toBeGreaterThan(0);
  await screenshot(page, testInfo, "region");
  await page.keyboard.press("Shift+Tab");
  await tabTo(page, "shot.type");

  // Zoom with the keys, the help overlay, and back.
  const hud = page.locator(".viewer__hud span").first();
  const fitted = await hud.textContent();
  await page.keyboard.press("+");
  await page.keyboard.press("+");
  await expect(hud).not.toHaveText(fitted ?? "");
  await page.keyboard.press("0");
  await expect(hud).toHaveText(fitted ?? "");
  await page.keyboard.press("?");
  await expect(page.getByTestId("help")).toBeVisible();
  await screenshot(page, testInfo, "help");
  await page.keyboard.press("?");
  await expect(page.getByTestId("help")).toBeHidden();

  const reviewed: { id: number; category: string; value: string }[] = [];
  for (let i = 0; i < 3; i++) {
    const id = await currentId(page);
    const change = await changeFocused(page);
    await expect(page.locator(".meta__changed")).toBeVisible();
    if (i === 0) await screenshot(page, testInfo, "keyboard");
    await submitWithKeyboard(page);
    reviewed.push({ id, ...change });
  }
  await expect(page.getByTestId("save-status")).toHaveText("All saved");
  await expect(page.getByTestId("session-saved")).toHaveText("3");

  for (const { id, category, value } of reviewed) {
    const label = await labelOf(page.request, id, category);
    expect(label, `assignment ${id} ${category}`).toMatchObject({ state: "verified", value });
  }
  expect((await stats(page.request, projects.review.id)).mine_submitted).toBe(before.mine_submitted + 3);

  // U takes the last submit back: the image shows again with the answers given.
  const last = reviewed[2];
  if (!last) throw new Error("three reviews expected");
  await page.keyboard.press("u");
  await expect(page.getByTestId("assignment-id")).toHaveAttribute("data-assignment-id", String(last.id));
  await expect(page.getByTestId(`field-${last.category}`).getByTestId("field-value")).not.toHaveText("—");
  await submitWithKeyboard(page);
  await expect(page.getByTestId("save-status")).toHaveText("All saved");
  expect(await labelOf(page.request, last.id, last.category)).toMatchObject({ state: "verified", value: last.value });
});

test("a submit made offline is kept, shown unsaved, survives a reload and is stored once", async ({ page, context }, testInfo) => {
  const { projects, annotators } = stack();
  await signIn(page, ANNOTATOR, annotators[ANNOTATOR] ?? "");
  const before = await stats(page.request, projects.review.id);
  const id = await openReview(page);
  await expect(page.getByText(/1 ready ahead/)).toBeVisible();
  const change = await changeFocused(page);
  const versionBefore = (await labelOf(page.request, id, change.category))?.version ?? 0;

  await context.setOffline(true);
  await submitWithKeyboard(page); // the next image shows at once: it was leased ahead
  await expect(page.getByTestId("save-status")).toContainText("1 unsaved");
  await screenshot(page, testInfo, "offline");
  await page.waitForTimeout(1500); // a few failed tries later it is still there, still unsaved
  await expect(page.getByTestId("save-status")).toContainText("1 unsaved");

  // Back online, but the server answers 503 for a while: retried, never dropped.
  let refused = 0;
  await page.route("**/api/v1/assignments/*/submit", (route) => {
    refused += 1;
    return route.fulfill({ status: 503, contentType: "application/json", body: '{"error":"unavailable","detail":"test"}' });
  });
  await context.setOffline(false);
  await expect.poll(() => refused).toBeGreaterThan(0);
  await page.reload();
  await expect(page.getByTestId("save-status")).toContainText("1 unsaved");
  await expect.poll(() => refused).toBeGreaterThan(1); // the reloaded page sent what was pending

  await page.unroute("**/api/v1/assignments/*/submit");
  await expect(page.getByTestId("save-status")).toHaveText("All saved", { timeout: 30_000 });

  const label = await labelOf(page.request, id, change.category);
  expect(label).toMatchObject({ state: "verified", value: change.value, version: versionBefore + 1 });
  expect((await stats(page.request, projects.review.id)).mine_submitted).toBe(before.mine_submitted + 1);
});

test("a 409 is shown with the server's current values, never retried blindly", async ({ page }, testInfo) => {
  const { annotators } = stack();
  await signIn(page, ANNOTATOR, annotators[ANNOTATOR] ?? "");
  const id = await openReview(page);
  const change = await changeFocused(page);
  const category = await categoryOf(page.request, id, change.category);
  const version = category.label?.version ?? 0;

  // Someone else's write, as the server reports it: the label moved on to a newer version.
  let hits = 0;
  await page.route("**/api/v1/assignments/*/submit", (route) => {
    hits += 1;
    const current = [{ category_id: category.id, value: category.label?.value ?? null, version: version + 1, state: "verified" }];
    return route.fulfill({
      status: 409,
      contentType: "application/json",
      body: JSON.stringify({ error: "stale_labels", detail: "someone changed these labels after you loaded them", current }),
    });
  });
  await submitWithKeyboard(page);
  const conflict = page.getByTestId("conflict");
  await expect(conflict).toContainText("Someone changed these labels first");
  await expect(conflict).toContainText(`v${version + 1}`);
  await expect(page.getByTestId("save-status")).toContainText("1 unsaved");
  await screenshot(page, testInfo, "conflict");
  await page.waitForTimeout(1500);
  expect(hits).toBe(1);
  await page.unroute("**/api/v1/assignments/*/submit");

  // Enter opens it again with the stored values and the person's answers over them.
  await page.keyboard.press("Enter");
  await expect(conflict).toBeHidden();
  await expect(page.getByTestId("assignment-id")).toHaveAttribute("data-assignment-id", String(id));
  await expect(page.locator(".meta__changed")).toBeVisible();
  await submitWithKeyboard(page);
  await expect(page.getByTestId("save-status")).toHaveText("All saved");
  expect(await labelOf(page.request, id, change.category)).toMatchObject({
    state: "verified",
    value: change.value,
    version: version + 1,
  });
});

test("S skips with a reason, typing filters a long list, the lease is kept alive and its loss shown", async ({ page }) => {
  const { annotators } = stack();
  await page.clock.install();
  await signIn(page, ANNOTATOR, annotators[ANNOTATOR] ?? "");
  const first = await openReview(page);
  await expect(page.getByText(/1 ready ahead/)).toBeVisible();

  // top.type has ten values: letters filter it, digits pick among what is left.
  await tabTo(page, "top.type");
  await page.keyboard.type("sw");
  await expect(page.getByTestId("typeahead")).toContainText("filter sw");
  await page.keyboard.press("2");
  await expect(page.getByTestId("field-top.type").getByTestId("field-value")).toHaveText("sweatshirt");

  const beat = page.waitForResponse((r) => r.url().endsWith(`/assignments/${first}/heartbeat`));
  await page.clock.fastForward("00:31");
  expect((await beat).status()).toBe(200);

  await page.keyboard.press("s");
  await expect(page.getByTestId("skip-prompt")).toBeVisible();
  await page.keyboard.type("too blurry to tell");
  await page.keyboard.press("Enter");
  await expect(page.getByTestId("assignment-id")).not.toHaveAttribute("data-assignment-id", String(first));
  await expect(page.getByTestId("notice")).toContainText("Skipped");
  const skipped = await page.request.get(`/api/v1/assignments/${first}`);
  expect(((await skipped.json()) as { status: string }).status).toBe("skipped");

  // The server refuses the heartbeat: the screen says so, and Enter moves on without a submit.
  const second = await currentId(page);
  await page.route(`**/api/v1/assignments/${second}/heartbeat`, (route) =>
    route.fulfill({ status: 409, contentType: "application/json", body: '{"error":"lease_lost","detail":"test"}' }),
  );
  let submits = 0;
  page.on("request", (request) => {
    if (request.url().endsWith("/submit")) submits += 1;
  });
  await page.clock.fastForward("00:31");
  await expect(page.getByTestId("lease-lost")).toBeVisible();
  await page.keyboard.press("Enter");
  await expect(page.getByTestId("assignment-id")).not.toHaveAttribute("data-assignment-id", String(second));
  expect(submits).toBe(0);
});

test("two annotators working at once never get the same assignment", async ({ browser }, testInfo) => {
  const { projects, annotators, base_url } = stack();
  const people = ["ann2@example.com", "ann3@example.com"];
  const contexts = await Promise.all(people.map(() => browser.newContext({ baseURL: base_url })));
  try {
    const pages = await Promise.all(contexts.map((c) => c.newPage()));
    await Promise.all(pages.map((p, i) => signIn(p, people[i] ?? "", annotators[people[i] ?? ""] ?? "")));
    await Promise.all(pages.map((p) => openReview(p)));
    await Promise.all(pages.map((p) => expect(p.getByText(/1 ready ahead/)).toBeVisible()));

    const seen = pages.map(() => new Set<number>());
    const leases = async (): Promise<number[][]> =>
      Promise.all(
        pages.map(async (p) => {
          const response = await p.request.get(`/api/v1/projects/${projects.pair.id}/assignments/mine`);
          expect(response.status()).toBe(200);
          return ((await response.json()) as { id: number }[]).map((a) => a.id);
        }),
      );
    const record = async (): Promise<void> => {
      const held = await leases();
      held.forEach((ids, i) => ids.forEach((id) => seen[i]?.add(id)));
      const [first = [], second = []] = held;
      expect(first.filter((id) => second.includes(id)), `leases ${first} / ${second}`).toEqual([]);
    };

    await record();
    for (let round = 0; round < 2; round++) {
      await Promise.all(pages.map(async (p, i) => seen[i]?.add(await currentId(p))));
      await Promise.all(pages.map((p) => submitWithKeyboard(p)));
      await record();
    }
    await Promise.all(pages.map((p) => expect(p.getByTestId("save-status")).toHaveText("All saved")));
    const [a = new Set<number>(), b = new Set<number>()] = seen;
    expect([...a].filter((id) => b.has(id))).toEqual([]);
    expect(a.size + b.size).toBeGreaterThanOrEqual(6);
    await screenshot(pages[0]!, testInfo, "pair-a");
    await screenshot(pages[1]!, testInfo, "pair-b");
  } finally {
    await Promise.all(contexts.map((c) => c.close()));
  }
});

test("typing in a text question never triggers a shortcut", async ({ page }) => {
  const { annotators } = stack();
  // A crafted assignment (human-v1 has no free-text question): the UI alone is under test here.
  const assignment = {
    id: 990001,
    project_id: 1,
    kind: "review",
    status: "leased",
    lease_expires_at: null,
    priority: 0,
    subject: { id: 1, image_id: 1, bbox: [40, 30, 300, 460], shot_type: "full_body", parsing_mask_url: null },
    image: { id: 1, width: 384, height: 512, url: "/api/v1/images/1/file", thumbnail_url: "/api/v1/images/1/thumbnail" },
    caption_preview: "a full-body shot",
    categories: [
      { id: 1, key: "shot.type", region: "shot", region_name: "Shot", question: "Shot?", kind: "single",
        values: [{ key: "full_body", label: "full body" }, { key: "portrait", label: "portrait" }],
        label: { value: "full_body", version: 1, state: "predicted", confidence: 0.9 }, prediction: null,
        parsing_ids: [], when: null },
      { id: 2, key: "style.note", region: "style", region_name: "Style", question: "Anything else?", kind: "text",
        values: [], label: null, prediction: null, parsing_ids: [], when: null },
    ],
  };
  let submitted: unknown = null;
  // Playwright tries the routes added last first: the catch-all for heartbeat/release goes first.
  await page.route("**/api/v1/assignments/990001/*", (route) => route.fulfill({ status: 204 }));
  await page.route("**/api/v1/projects/*/assignments/mine", (route) => route.fulfill({ json: [] }));
  await page.route("**/api/v1/projects/*/assignments/next", (route) => route.fulfill({ status: 204 }));
  await page.route("**/api/v1/assignments/990001/submit", async (route) => {
    submitted = route.request().postDataJSON();
    await route.fulfill({
      json: { assignment_id: 990001, status: "submitted", changed_fields: 1, labels: [], undo_until: null },
    });
  });
  await signIn(page, ANNOTATOR, annotators[ANNOTATOR] ?? "");
  await page.unroute("**/api/v1/projects/*/assignments/next");
  let served = false;
  await page.route("**/api/v1/projects/*/assignments/next", (route) =>
    served ? route.fulfill({ status: 204 }) : ((served = true), route.fulfill({ json: assignment })),
  );
  await openReview(page);

  await page.keyboard.press("Tab");
  await expect(page.locator(".field__text")).toBeFocused();
  const text = "s u y n ? + - 0 1 2 Sunny";
  await page.keyboard.type(text);
  await expect(page.locator(".field__text")).toHaveValue(text);
  await expect(page.getByTestId("skip-prompt")).toBeHidden();
  await expect(page.getByTestId("help")).toBeHidden();
  await expect(page.getByTestId("field-shot.type").getByTestId("field-value")).toHaveText("full body");
  await page.keyboard.press("Escape");
  await expect(page.locator(".field__text")).not.toBeFocused();
  await page.keyboard.press("Enter"); // back into the field
  await expect(page.locator(".field__text")).toBeFocused();
  await page.keyboard.press("Enter"); // submits from inside the field
  await expect.poll(() => submitted).not.toBeNull();
  await expect(page.getByTestId("save-status")).toHaveText("All saved");
  expect(submitted).toMatchObject({
    answers: [
      { category_id: 1, value: "full_body", label_version: 1 },
      { category_id: 2, value: text, label_version: null },
    ],
  });
});

test("user text is shown as text, never run as HTML", async ({ page }) => {
  const { admin } = stack();
  await signIn(page, admin.email, admin.password);
  const csrf = (await (await page.request.get("/api/v1/auth/csrf")).json()) as { csrf_token: string };
  const name = `<img src=x onerror="document.body.dataset.xss='1'"><script>document.body.dataset.xss='2'</script>`;
  const created = await page.request.post("/api/v1/projects", {
    data: { name, description: "<b>bold?</b>" },
    headers: { "X-CSRF-Token": csrf.csrf_token },
  });
  expect(created.status()).toBe(201);
  await page.reload();
  await expect(page.getByText(name)).toBeVisible();
  await expect(page.getByText("<b>bold?</b>")).toBeVisible();
  expect(await page.evaluate(() => document.body.dataset.xss ?? null)).toBeNull();
  expect(await page.locator("img[src=x]").count()).toBe(0);
});
