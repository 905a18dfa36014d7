/**
 * What one anonymous client can send, and the bound that holds: nothing it sends makes the
 * service keep more than the request needs.
 */
import { Sharding } from "@effect/cluster"
import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import * as crypto from "node:crypto"
import { json, raw, TestApp } from "../fixtures/Http.js"

const user = "00000000-0000-0000-0000-000000000001"

layer(TestApp, { excludeTestServices: true, timeout: "90 seconds" })("hostile clients", (it) => {
  it.effect("purchases and updates of unknown concert ids are refused without starting an entity", () =>
    Effect.gen(function*() {
      const sharding = yield* Sharding.Sharding
      const before = yield* sharding.activeEntityCount
      const answers = yield* Effect.forEach(
        Array.from({ length: 500 }, () => crypto.randomUUID()),
        (id) => raw("POST", "/api/v1/tickets", JSON.stringify({ concert_id: id, user_id: user })),
        { concurrency: 32 }
      )
      expect(new Set(answers.map((a) => a.status))).toEqual(new Set([400]))
      expect(json(answers[0]!)).toMatchObject({ error: expect.stringContaining("does not exist") })
      const id = crypto.randomUUID()
      const put = yield* raw("PUT", `/api/v1/concerts/${id}`, JSON.stringify({ name: "x" }))
      expect(put.status).toBe(404)
      expect(json(put)).toEqual({ error: `concert ${id} does not exist` })
      expect(yield* sharding.activeEntityCount).toBe(before)
    }))
})
