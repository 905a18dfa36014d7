import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { json, raw, TestApp } from "../fixtures/Http.js"

const user = "00000000-0000-0000-0000-000000000001"
const valid = { name: "N", venue: "V", date: "2027-01-01", capacity: 5, status: "ACTIVE" }
const without = (field: keyof typeof valid) => JSON.stringify(Object.fromEntries(Object.entries(valid).filter(([k]) => k !== field)))
const withField = (field: string, value: unknown) => JSON.stringify({ ...valid, [field]: value })

type Case = readonly [method: string, path: string, body: string | undefined, expected: number]

const concertCases: ReadonlyArray<Case> = [
  ["POST", "/api/v1/concerts", "{", 400],
  ["POST", "/api/v1/concerts", "", 400],
  ["POST", "/api/v1/concerts", "null", 400],
  ["POST", "/api/v1/concerts", "[]", 400],
  ["POST", "/api/v1/concerts", "\"concert\"", 400],
  ["POST", "/api/v1/concerts", "42", 400],
  ["POST", "/api/v1/concerts", "{}", 400],
  ...(["name", "venue", "date", "capacity", "status"] as const).map((f): Case => ["POST", "/api/v1/concerts", without(f), 400]),
  ["POST", "/api/v1/concerts", withField("id", "00000000-0000-4000-8000-000000000000"), 400],
  ["POST", "/api/v1/concerts", withField("extra", true), 400],
  ["POST", "/api/v1/concerts", withField("capacity", "5"), 400],
  ["POST", "/api/v1/concerts", withField("capacity", 2.5), 400],
  ["POST", "/api/v1/concerts", withField("capacity", -1), 400],
  ["POST", "/api/v1/concerts", withField("capacity", 0), 400],
  ["POST", "/api/v1/concerts", withField("capacity", 150_001), 400],
  ["POST", "/api/v1/concerts", withField("capacity", null), 400],
  ["POST", "/api/v1/concerts", withField("name", 5), 400],
  ["POST", "/api/v1/concerts", withField("name", ""), 400],
  ["POST", "/api/v1/concerts", withField("venue", "   "), 400],
  // Characters the database or an SVG cannot hold: NUL, other controls, non-characters, half surrogates.
  ...["A\u0000B", "A\u0001B", "A\u001b[31mB", "A\nB", "A\u0085B", "A\ufffeB", "A\uffffB", "A\ud800B", "A\udc00B"].flatMap(
    (name): ReadonlyArray<Case> => [
      ["POST", "/api/v1/concerts", withField("name", name), 400],
      ["POST", "/api/v1/concerts", withField("venue", name), 400]
    ]
  ),
  ["POST", "/api/v1/concerts", withField("status", "OPEN"), 400],
  ["POST", "/api/v1/concerts", withField("status", "active"), 400],
  ["POST", "/api/v1/concerts", withField("date", ""), 400],
  ["POST", "/api/v1/concerts", withField("date", "2027-13-01"), 400],
  ["POST", "/api/v1/concerts", withField("date", "07/06/2027"), 400],
  ["POST", "/api/v1/concerts", withField("date", 20270101), 400],
  ["POST", "/api/v1/concerts", JSON.stringify({ ...valid, nested: { a: [[[[[]]]]] } }), 400],
  ["POST", "/api/v1/concerts", "x".repeat(200_000), 413]
]

const garbageIds = ["999999999", "invalid_ticket_id", "%00", "'%3B%20drop%20table%20tickets%3B--", "x".repeat(5000)]

const pathCases: ReadonlyArray<Case> = garbageIds.flatMap((id): Array<Case> => [
  ["GET", `/api/v1/concerts/${id}`, undefined, 404],
  ["PUT", `/api/v1/concerts/${id}`, "{\"name\":\"x\"}", 404],
  ["GET", `/api/v1/concerts/${id}/seats`, undefined, 404],
  ["GET", `/api/v1/tickets/${id}`, undefined, 404],
  ["POST", `/api/v1/tickets/${id}/print`, undefined, 404],
  ["GET", `/api/v1/tickets/${id}/print`, undefined, 404],
  ["GET", `/api/v1/users/${id}`, undefined, 404],
  ["GET", `/api/v1/tickets?user_id=${id}`, undefined, 404],
  ["GET", `/api/v1/tickets?concert_id=${id}`, undefined, 404]
])

/** JSON nested far deeper than any body of this API (describing it once overflowed the stack: a 500). */
const deep = "[".repeat(10_000) + "]".repeat(10_000)

const otherCases: ReadonlyArray<Case> = [
  ["POST", "/api/v1/concerts", deep, 400],
  ["POST", "/api/v1/concerts", `{"name":${deep}}`, 400],
  ["POST", "/api/v1/tickets", deep, 400],
  ["POST", "/api/v1/tickets", `{"concert_id":${deep},"user_id":"${user}"}`, 400],
  ["POST", "/api/v1/reservations", deep, 400],
  ["POST", "/api/v1/tickets", "{", 400],
  ["POST", "/api/v1/tickets", "{}", 400],
  ["POST", "/api/v1/tickets", JSON.stringify({ user_id: user }), 400],
  ["POST", "/api/v1/tickets", JSON.stringify({ concert_id: "00000000-0000-4000-8000-000000000000" }), 400],
  ["POST", "/api/v1/tickets", JSON.stringify({ concert_id: 5, user_id: user }), 400],
  ["POST", "/api/v1/tickets", JSON.stringify({ concert_id: null, user_id: user }), 400],
  ["POST", "/api/v1/tickets", JSON.stringify({ concert_id: "00000000-0000-4000-8000-000000000000", user_id: user, seat: 1 }), 400],
  ["POST", "/api/v1/tickets", JSON.stringify({ concert_id: "00000000-0000-4000-8000-000000000000", user_id: user }), 400],
  ["POST", "/api/v1/tickets", JSON.stringify({ concert_id: "garbage", user_id: "nobody" }), 400],
  ["POST", "/api/v1/tickets", "[1,2,3]", 400],
  ["GET", "/api/v1/tickets?user_id=&concert_id=", undefined, 404],
  ["GET", "/api/v1/nothing-here", undefined, 404],
  ["DELETE", "/api/v1/concerts", undefined, 404],
  ["GET", "/", undefined, 404]
]

layer(TestApp, { excludeTestServices: true, timeout: "60 seconds" })("bad input", (it) => {
  it.effect("every malformed, invalid or oversized request gets its 4xx with a JSON error, never a 5xx", () =>
    Effect.gen(function*() {
      const created = yield* raw("POST", "/api/v1/concerts", JSON.stringify(valid))
      const id = (json(created) as { id: string }).id
      const putCases: ReadonlyArray<Case> = [
        ["PUT", `/api/v1/concerts/${id}`, "{", 400],
        ["PUT", `/api/v1/concerts/${id}`, "null", 400],
        ["PUT", `/api/v1/concerts/${id}`, "[]", 400],
        ["PUT", `/api/v1/concerts/${id}`, JSON.stringify({ capacity: 10 }), 400],
        ["PUT", `/api/v1/concerts/${id}`, JSON.stringify({ name: "A\u0000B" }), 400],
        ["PUT", `/api/v1/concerts/${id}`, JSON.stringify({ venue: "A\u001bB" }), 400],
        ["PUT", `/api/v1/concerts/${id}`, JSON.stringify({ id }), 400],
        ["PUT", `/api/v1/concerts/${id}`, JSON.stringify({ name: 5 }), 400],
        ["PUT", `/api/v1/concerts/${id}`, JSON.stringify({ status: null }), 400],
        ["PUT", `/api/v1/concerts/${id}`, JSON.stringify({ date: "tomorrow" }), 400],
        ["PUT", `/api/v1/concerts/${id}`, `{"venue":${deep}}`, 400]
      ]
      const failures: Array<string> = []
      for (const [method, path, body, expected] of [...concertCases, ...pathCases, ...otherCases, ...putCases]) {
        const response = yield* raw(method, path, body)
        const error = response.headers["content-type"] === "application/json"
          ? (json(response) as { error?: unknown }).error
          : undefined
        if (response.status !== expected || typeof error !== "string" || error === "") {
          failures.push(`${method} ${path.slice(0, 60)} ${String(body).slice(0, 60)} -> ${response.status} ${response.body.slice(0, 120)}`)
        }
      }
      expect(failures).toEqual([])
      // An answer names what was sent, but does not echo back 50 KB of it.
      for (const [method, path, body] of [
        ["POST", "/api/v1/tickets", JSON.stringify({ concert_id: "x".repeat(50_000), user_id: user })],
        ["POST", "/api/v1/tickets", JSON.stringify({ concert_id: id, user_id: "y".repeat(50_000) })],
        ["GET", `/api/v1/concerts/${"z".repeat(5000)}`, undefined],
        ["POST", "/api/v1/concerts", JSON.stringify({ ...valid, name: "n".repeat(50_000) })],
        ["POST", "/api/v1/concerts", JSON.stringify({ ...valid, capacity: "9".repeat(50_000) })],
        ["POST", "/api/v1/reservations", JSON.stringify({ concert_id: id, user_id: user, quantity: "q".repeat(50_000) })]
      ] as const) {
        const answer = yield* raw(method, path, body)
        expect([answer.status < 500, answer.body.length < 300]).toEqual([true, true])
      }
      // Nothing above changed the concert.
      expect(json(yield* raw("GET", `/api/v1/concerts/${id}`))).toEqual({ id, ...valid })
    }))
})
