import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { freshDatabaseUrl } from "../fixtures/Database.js"
import { rawRequest } from "../fixtures/RawHttp.js"
import { postConcert, serviceResource } from "../fixtures/Service.js"
import { eventually } from "../fixtures/eventually.js"

/** A stand-in OTLP/HTTP collector: keeps every exported span name. */
const collector = Effect.acquireRelease(
  Effect.promise(() =>
    new Promise<{ readonly url: string; readonly spans: Set<string>; readonly server: http.Server }>((resolve) => {
      const spans = new Set<string>()
      const server = http.createServer((request, response) => {
        let body = ""
        request.on("data", (chunk: Buffer) => (body += chunk.toString()))
        request.on("end", () => {
          if (request.url === "/v1/traces") {
            for (const match of body.matchAll(/"name":"([^"]+)"/g)) spans.add(match[1]!)
          }
          response.writeHead(200, { "content-type": "application/json" })
          response.end("{}")
        })
      })
      server.listen(0, "127.0.0.1", () =>
        resolve({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, spans, server }))
    })
  ),
  ({ server }) => Effect.promise(() => new Promise((resolve) => server.close(resolve)))
)

it.scopedLive("with an OTLP endpoint, requests and entity messages are exported as spans", () =>
  Effect.gen(function*() {
    const otlp = yield* collector
    const url = yield* freshDatabaseUrl
    const service = yield* serviceResource({ DATABASE_URL: url, OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_BSP_SCHEDULE_DELAY: "300" })
    const concertId = yield* Effect.promise(() => postConcert(service.port, 5, "Traced"))
    const bought = yield* Effect.promise(() =>
      rawRequest(service.port, "POST", "/api/v1/tickets", JSON.stringify({
        concert_id: concertId,
        user_id: "00000000-0000-0000-0000-000000000001"
      })))
    expect(bought.status).toBe(201)
    const expected = [
      "http.server POST",
      "TicketsHttp.purchase",
      "Concert.client.Purchases",
      `Concert(${concertId}).Purchases`,
      "ConcertEntity.purchases",
      "ConcertJournal.append"
    ]
    yield* eventually(Effect.sync(() => expected.every((name) => otlp.spans.has(name))), (all) => all, {
      within: "10 seconds",
      every: "100 millis"
    })
    service.process.kill("SIGTERM")
    yield* Effect.promise(() => service.exited)
    expect([...otlp.spans]).toEqual(expect.arrayContaining(expected))
  }), 120_000)
