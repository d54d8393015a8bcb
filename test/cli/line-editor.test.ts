import { describe, expect, test } from "bun:test";
import { KeyDecoder } from "../../src/cli/keys.ts";
import { type EditorEffect, LineEditor } from "../../src/cli/line-editor.ts";

/** Types `input` (raw terminal bytes) into `editor`; returns the effects. */
function type(editor: LineEditor, input: string): EditorEffect[] {
  return new KeyDecoder().push(input).flatMap((key) => editor.handle(key));
}

const submitted = (effects: EditorEffect[]) =>
  effects.flatMap((e) => (e.kind === "submit" ? [[e.line, e.literal] as const] : []));

describe("LineEditor", () => {
  test("edits like readline: moves, deletes, kills words and ends", () => {
    const e = new LineEditor();
    type(e, "hello world");
    type(e, "\u0017"); // Ctrl-W
    expect(e.line).toBe("hello ");
    type(e, "there\u0001X\u0005!"); // Home, X, End, !
    expect(e.line).toBe("Xhello there!");
    type(e, "\u001b[D\u001b[D\u007f"); // left, left, backspace
    expect(e.line).toBe("Xhello thee!");
    type(e, "\u0001\u001b[3~\u000b"); // Home, Delete, Ctrl-K
    expect(e.line).toBe("");
    type(e, "abc\u001b[D\u0015");
    expect(e.line).toBe("c");
  });

  test("Enter submits and clears; Ctrl-D deletes, or ends on an empty line; Ctrl-C interrupts", () => {
    const e = new LineEditor();
    expect(submitted(type(e, "hi\r"))).toEqual([["hi", false]]);
    expect(e.line).toBe("");
    type(e, "ab\u0001");
    expect(type(e, "\u0004")).toEqual([]);
    expect(e.line).toBe("b");
    type(e, "\u000b");
    expect(type(e, "\u0004")).toEqual([{ kind: "eof" }]);
    expect(type(e, "\u0003")).toEqual([{ kind: "interrupt" }]);
  });

  test("a paste is literal: each line break sends the line it ends, the rest stays", () => {
    const e = new LineEditor();
    const effects = type(e, "\u001b[200~/nick evil\r\nsecond\nthird\u001b[201~");
    expect(submitted(effects)).toEqual([
      ["/nick evil", true],
      ["second", true],
    ]);
    expect(e.line).toBe("third");
    expect(submitted(type(e, "\r"))).toEqual([["third", true]]);
    // Typed first, then pasted: the typed start decides.
    type(e, "/nick \u001b[200~bob\u001b[201~");
    expect(submitted(type(e, "\r"))).toEqual([["/nick bob", false]]);
  });

  test("Up and Down walk the history and come back to the line being written", () => {
    const e = new LineEditor(undefined, ["old one", "old two"]);
    type(e, "draft");
    type(e, "\u001b[A");
    expect(e.line).toBe("old two");
    type(e, "\u001b[A");
    expect(e.line).toBe("old one");
    expect(type(e, "\u001b[A")).toEqual([{ kind: "bell" }]);
    type(e, "\u001b[B\u001b[B");
    expect(e.line).toBe("draft");
    type(e, "\r");
    expect(e.submitted).toEqual(["old one", "old two", "draft"]);
  });

  test("Tab completes a command, a nick (with ': ' at the start), and cycles when several match", () => {
    const e = new LineEditor({
      commands: () => ["who", "whois", "msg", "me"],
      nicks: () => ["bob", "Bobby", "carol"],
    });
    type(e, "/ms\t");
    expect(e.line).toBe("/msg ");
    type(e, "\u0015ca\t");
    expect(e.line).toBe("carol: ");
    type(e, "\u0015hi b\t");
    expect(e.line).toBe("hi bob"); // the shared start
    type(e, "\t");
    expect(e.line).toBe("hi bob ");
    type(e, "\t");
    expect(e.line).toBe("hi Bobby ");
    type(e, "\t");
    expect(e.line).toBe("hi bob ");
    expect(type(e, "\u0015zz\t")).toEqual([{ kind: "bell" }]);
  });

  test("the view keeps the cursor in sight and never fills the last column", () => {
    const e = new LineEditor();
    type(e, "x".repeat(100));
    let view = e.view(40, 2);
    expect(2 + Bun.stringWidth(view.text)).toBeLessThan(40);
    expect(view.cursor).toBe(Bun.stringWidth(view.text));
    type(e, "\u0001");
    view = e.view(40, 2);
    expect(view.cursor).toBe(0);
    expect(view.text).toBe("x".repeat(37));
    // Wide characters count as two columns.
    const wide = new LineEditor();
    type(wide, "世界".repeat(30));
    view = wide.view(30, 2);
    expect(2 + Bun.stringWidth(view.text)).toBeLessThan(30);
    expect(view.cursor).toBe(Bun.stringWidth(view.text));
  });

  test("an emoji with modifiers is one character to move over and delete", () => {
    const e = new LineEditor();
    type(e, "a👍🏽b\u001b[D\u007f");
    expect(e.line).toBe("ab");
  });
});
