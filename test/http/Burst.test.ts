import { HttpServer } from "@effect/platform"
import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import * as http from "node:http"
import { json, raw, TestApp } from "../fixtures/Http.js"
import { postStatus } from "../fixtures/RawHttp.js"

const post = (agent: http.Agent, port: number, body: string) => postStatus(agent, port, "/api/v1/tickets", body)

layer(TestApp, { excludeTestServices: true, timeout: "120 seconds" })("purchase burst", (it) => {
  it.effect("2,000 concurrent purchases on a concert of 500: exactly 500 × 201 and 1,500 × 422", () =>
    Effect.gen(function*() {
      const created = yield* raw("POST", "/api/v1/concerts", JSON.stringify({
        name: "Pre-sale",
        venue: "Arena",
        date: "2027-02-02",
        capacity: 500,
        status: "ACTIVE"
      }))
      const concertId = (json(created) as { id: string }).id
      const server = yield* HttpServer.HttpServer
      const port = server.address._tag === "TcpAddress" ? server.address.port : 0
      const agent = new http.Agent({ keepAlive: true, maxSockets: 500 })
      const statuses = yield* Effect.promise(() =>
        Promise.all(Array.from({ length: 2000 }, (_, i) =>
          post(agent, port, JSON.stringify({
            concert_id: concertId,
            user_id: `00000000-0000-0000-0000-${String((i % 5000) + 1).padStart(12, "0")}`
          }))))
      )
      agent.destroy()
      const histogram: Record<number, number> = {}
      for (const status of statuses) histogram[status] = (histogram[status] ?? 0) + 1
      expect(histogram).toEqual({ 201: 500, 422: 1500 })
      const tickets = json(yield* raw("GET", `/api/v1/tickets?concert_id=${concertId}`)) as Array<unknown>
      expect(tickets).toHaveLength(500)
      expect((json(yield* raw("GET", `/api/v1/concerts/${concertId}`)) as { status: string }).status).toBe("SOLD_OUT")
    }))
})
