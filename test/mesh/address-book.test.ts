import { expect, test } from "bun:test";
import { AddressBook, GOSSIP_RETRY_MS } from "../../src/mesh/address-book.ts";

const at = (port: number) => ({ host: "10.0.0.1", port });

test("a failing address backs off 1, 2, 4 … 30 s and is skipped meanwhile", () => {
  let now = 0;
  const book = new AddressBook(
    () => now,
    () => 0,
  );
  const entry = book.learn(at(1), "aa", false);
  const delays = Array.from({ length: 7 }, () => book.failed(entry));
  expect(delays).toEqual([1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
  expect(book.candidates(() => true)).toEqual([]);
  now = entry.retryAt;
  expect(book.candidates(() => true)).toEqual([entry]);
  book.succeeded(entry, "aa");
  expect(entry.failures).toBe(0);
});

test("a neighbour vouching for a backed-off address makes it eligible again soon", () => {
  const now = 0;
  const book = new AddressBook(
    () => now,
    () => 0,
  );
  const entry = book.learn(at(1), "aa", false);
  for (let i = 0; i < 6; i++) book.failed(entry);
  expect(entry.retryAt).toBe(30_000);
  book.learn(at(1), "aa", true);
  expect(entry.retryAt).toBe(GOSSIP_RETRY_MS);
});

test("a new node at a known address starts with a clean record", () => {
  let now = 0;
  const book = new AddressBook(
    () => now,
    () => 0,
  );
  const entry = book.learn(at(1), "aa", false);
  book.failed(entry);
  book.markSelf(entry);
  now = 10;
  book.learn(at(1), "bb", true);
  expect(entry).toMatchObject({ nodeId: "bb", failures: 0, self: false, retryAt: 10 });
});

test("our own address is never a candidate", () => {
  const book = new AddressBook(() => 0);
  book.markSelf(book.learn(at(1), "me", false));
  book.learn(at(2), "you", false);
  expect(book.candidates(() => true).map((e) => e.key)).toEqual(["10.0.0.1:2"]);
});

test("bounded: when full, the address with the most failures goes", () => {
  const book = new AddressBook(() => 0, Math.random, 3);
  const a = book.learn(at(1), "a", false);
  const b = book.learn(at(2), "b", false);
  book.learn(at(3), "c", false);
  book.failed(b);
  book.failed(b);
  book.failed(a);
  book.learn(at(4), "d", false);
  expect(book.size).toBe(3);
  expect(
    book
      .all()
      .map((e) => e.key)
      .sort(),
  ).toEqual(["10.0.0.1:1", "10.0.0.1:3", "10.0.0.1:4"]);
  for (let i = 5; i < 2000; i++) book.learn(at(i), String(i), true);
  expect(book.size).toBe(3);
});
