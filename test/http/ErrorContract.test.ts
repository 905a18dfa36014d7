import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { json, raw, TestApp } from "../fixtures/Http.js"

/*
 * Every kind of error a client can be answered with, byte for byte: status, content type,
 * Retry-After and the exact JSON body. Clients compare these; they never change.
 */

const alice = "00000000-0000-0000-0000-000000000001"
const unknownUuid = "00000000-0000-4000-8000-000000000000"
const concert = { name: "N", venue: "V", date: "2027-01-01", capacity: 1, status: "ACTIVE" }

interface Expected {
  readonly status: number
  readonly body: string
  readonly retryAfter?: string
}

const error = (status: number, message: string): Expected => ({ status, body: JSON.stringify({ error: message }) })

layer(TestApp, { excludeTestServices: true, timeout: "60 seconds" })("error contract", (it) => {
  it.effect("each error a client can see has its status and its exact JSON body", () =>
    Effect.gen(function*() {
      const soldOut = (json(yield* raw("POST", "/api/v1/concerts", JSON.stringify(concert))) as { id: string }).id
      const cancelled = (json(
        yield* raw("POST", "/api/v1/concerts", JSON.stringify({ ...concert, status: "CANCELLED" }))
      ) as { id: string }).id
      const bought = yield* raw(
        "POST",
        "/api/v1/tickets",
        JSON.stringify({ concert_id: soldOut, user_id: alice }),
        { "idempotency-key": "k1" }
      )
      expect(bought.status).toBe(201)
      const ticket = (json(bought) as { id: string }).id
      const purchase = (body: unknown, headers: Record<string, string> = {}) =>
        ["POST", "/api/v1/tickets", JSON.stringify(body), headers] as const

      const cases: ReadonlyArray<readonly [readonly [string, string, string?, Record<string, string>?], Expected]> = [
        [["GET", "/api/v1/users/nobody"], error(404, "user nobody does not exist")],
        [["GET", "/api/v1/concerts/999"], error(404, "concert 999 does not exist")],
        [["GET", `/api/v1/concerts/${unknownUuid}`], error(404, `concert ${unknownUuid} does not exist`)],
        [["PUT", "/api/v1/concerts/999", "{\"name\":\"x\"}"], error(404, "concert 999 does not exist")],
        [["PUT", `/api/v1/concerts/${unknownUuid}`, "{\"name\":\"x\"}"], error(404, `concert ${unknownUuid} does not exist`)],
        [["GET", "/api/v1/concerts/999/seats"], error(404, "concert 999 does not exist")],
        [["GET", `/api/v1/concerts/${unknownUuid}/seats`], error(404, `concert ${unknownUuid} does not exist`)],
        [["GET", "/api/v1/tickets/999"], error(404, "ticket 999 does not exist")],
        [["GET", `/api/v1/tickets/${unknownUuid}`], error(404, `ticket ${unknownUuid} does not exist`)],
        [["POST", "/api/v1/tickets/999/print"], error(404, "ticket 999 does not exist")],
        [["POST", `/api/v1/tickets/${unknownUuid}/print`], error(404, `ticket ${unknownUuid} does not exist`)],
        [["GET", "/api/v1/tickets/999/print"], error(404, "ticket 999 does not exist")],
        [["GET", `/api/v1/tickets/${ticket}/print`], error(404, `ticket ${ticket} is not printed (NOT_PRINTED)`)],
        [["GET", "/api/v1/tickets?user_id=nobody"], error(404, "user nobody does not exist")],
        [["GET", "/api/v1/tickets?concert_id=999"], error(404, "concert 999 does not exist")],
        [["GET", `/api/v1/tickets?concert_id=${unknownUuid}`], error(404, `concert ${unknownUuid} does not exist`)],
        [purchase({ concert_id: "garbage", user_id: alice }), error(400, "concert garbage does not exist")],
        [purchase({ concert_id: unknownUuid, user_id: alice }), error(400, `concert ${unknownUuid} does not exist`)],
        [purchase({ concert_id: soldOut, user_id: "nobody" }), error(400, "user nobody does not exist")],
        [purchase({ concert_id: soldOut, user_id: "" }), error(400, "user  does not exist")],
        [purchase({ concert_id: soldOut, user_id: alice }), error(422, "the concert is sold out")],
        [purchase({ concert_id: cancelled, user_id: alice }), error(422, "the concert is cancelled")],
        [
          purchase({ concert_id: cancelled, user_id: alice }, { "idempotency-key": "k1" }),
          error(422, "this Idempotency-Key was already used for a different purchase")
        ],
        [
          purchase({ concert_id: soldOut, user_id: alice }, { "idempotency-key": "a b" }),
          error(400, "invalid request: idempotency-key: must be 1 to 255 printable ASCII characters")
        ],
        [
          purchase({ concert_id: soldOut, user_id: alice }, { "idempotency-key": "x".repeat(256) }),
          error(400, "invalid request: idempotency-key: must be 1 to 255 printable ASCII characters")
        ],
        [["POST", "/api/v1/tickets", "{"], error(400, "request body is not valid JSON")],
        [["POST", "/api/v1/tickets", "{}"], error(400, "invalid request: concert_id: is missing")],
        [
          purchase({ concert_id: 5, user_id: alice }),
          error(400, "invalid request: concert_id: Expected string, actual 5")
        ],
        [
          purchase({ concert_id: soldOut, user_id: alice, seat: 1 }),
          error(400, "invalid request: seat: is not an accepted field")
        ],
        [["POST", "/api/v1/concerts", "{"], error(400, "request body is not valid JSON")],
        [["POST", "/api/v1/concerts", "x".repeat(70_000)], error(413, "request body is larger than 65536 bytes")],
        [["GET", "/api/v1/nothing-here"], error(404, "no such endpoint: GET /api/v1/nothing-here")],
        [["DELETE", "/api/v1/concerts"], error(404, "no such endpoint: DELETE /api/v1/concerts")]
      ]
      const answers: Array<Expected & { readonly request: string; readonly contentType: unknown }> = []
      const expected: Array<Expected & { readonly request: string; readonly contentType: unknown }> = []
      for (const [[method, path, body, headers], want] of cases) {
        const response = yield* raw(method, path, body, headers)
        const request = `${method} ${path.slice(0, 80)} ${body?.slice(0, 80) ?? ""}`
        answers.push({
          request,
          status: response.status,
          contentType: response.headers["content-type"],
          body: response.body,
          ...(response.headers["retry-after"] === undefined ? {} : { retryAfter: response.headers["retry-after"] })
        })
        expected.push({ request, contentType: "application/json", ...want })
      }
      expect(answers).toEqual(expected)
    }))
})
