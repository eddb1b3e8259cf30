import assert from "node:assert/strict";
import { fit, formatDuration, LiveRegion, paint, styleFor, visible } from "./term.ts";

Deno.test("colours only on a terminal and never with NO_COLOR", () => {
  assert.equal(styleFor(true, {}).color, true);
  assert.equal(styleFor(true, { noColor: "1" }).color, false);
  assert.equal(styleFor(true, { noColor: "" }).color, true, "an empty NO_COLOR is unset");
  assert.equal(styleFor(false, {}).color, false);
  assert.equal(paint(styleFor(false, {}), "red", "x"), "x");
  assert.equal(paint(styleFor(true, {}), "red", "x"), "\x1b[31mx\x1b[39m");
});

Deno.test("durations read like a person would write them", () => {
  assert.deepEqual([850, 2100, 65_000, -1].map(formatDuration), ["850ms", "2.1s", "1m05s", ""]);
});

Deno.test("fit cuts to the visible width, keeping colour codes out of the count", () => {
  const style = styleFor(true, {});
  const line = paint(style, "green", "✔ build") + " 2.1s";
  assert.equal(visible(fit(line, 80)), "✔ build 2.1s");
  assert.equal(visible(fit(line, 6)), "✔ bui…");
  assert.equal(fit("abc", 3), "abc");
});

Deno.test("the live region redraws in place on a terminal and is never written off one", () => {
  let tty = "";
  const region = new LiveRegion({ tty: true, color: false, columns: 80 }, (text) => (tty += text));
  region.render(["done"], ["spin 1", "out"]);
  region.render([], ["spin 2"]);
  region.clear();
  assert.equal(tty, "done\nspin 1\nout\n" + "\x1b[2A\r\x1b[Jspin 2\n" + "\x1b[1A\r\x1b[J");
  let plain = "";
  const off = new LiveRegion({ tty: false, color: false, columns: 80 }, (text) => (plain += text));
  off.render(["done"], ["spin"]);
  off.clear();
  assert.equal(plain, "done\n");
});
