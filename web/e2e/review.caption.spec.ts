// The live caption: a changed answer shows the server's caption of the draft (composed and
// trimmed by server/captions). The leases it took are given back for the other tests.
import { changeFocused, expect, openReview, signIn, stack, test } from "./helpers";

const ANNOTATOR = "ann1@example.com";

test("a changed answer shows the server's caption of the draft", async ({ page }) => {
  const { annotators, projects } = stack();
  await signIn(page, ANNOTATOR, annotators[ANNOTATOR] ?? "");
  await openReview(page);
  const caption = page.getByTestId("caption");
  await expect(caption.locator(".caption__label")).toHaveText("caption");
  const stored = (await caption.locator(".caption__text").textContent()) ?? "";

  const preview = page.waitForResponse((r) => r.url().endsWith("/caption/preview") && r.request().method() === "POST");
  await changeFocused(page);
  const response = await preview;
  expect(response.status()).toBe(200);
  const body = (await response.json()) as { caption: string; tokens: number };
  expect(body.tokens).toBeLessThanOrEqual(77);
  await expect(caption.locator(".caption__label")).toContainText("caption with your changes (draft)");
  await expect(caption.locator(".caption__text")).toHaveText(body.caption || "—");
  expect(body.caption).not.toBe(stored); // the focused question is the shot, said first

  // Give back what this test leased, so the review tests find the queue as they expect it.
  const csrf = (await page.evaluate(() => sessionStorage.getItem("aa.csrf"))) ?? "";
  await page.goto("about:blank"); // the screen stops leasing
  const mine = await page.request.get(`/api/v1/projects/${projects.review.id}/assignments/mine`);
  expect(mine.status()).toBe(200);
  for (const held of (await mine.json()) as { id: number }[]) {
    const released = await page.request.post(`/api/v1/assignments/${held.id}/release`, { headers: { "X-CSRF-Token": csrf } });
    expect(released.status()).toBe(204);
  }
});
