import { expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { freshDatabaseUrl } from "../fixtures/Database.js"
import { rawRequest } from "../fixtures/RawHttp.js"
import { postConcert, serviceResource } from "../fixtures/Service.js"
import { eventually } from "../fixtures/eventually.js"
import { currentSpan, withSpan } from "../../src/Spans.js"

interface Link {
  readonly traceId: string
  readonly spanId: string
}

interface Span extends Link {
  readonly name: string
  readonly parentSpanId?: string
  readonly links?: ReadonlyArray<Link>
  readonly attributes?: ReadonlyArray<{ readonly key: string; readonly value: { readonly stringValue?: string } }>
}

/** A stand-in OTLP/HTTP collector (JSON): keeps every span exported, and the metric names. */
const collector = Effect.acquireRelease(
  Effect.promise(() =>
    new Promise<{ readonly url: string; readonly spans: Array<Span>; readonly metrics: Set<string>; readonly server: http.Server }>(
      (resolve) => {
        const spans: Array<Span> = []
        const metrics = new Set<string>()
        const server = http.createServer((request, response) => {
          let body = ""
          request.on("data", (chunk: Buffer) => (body += chunk.toString()))
          request.on("end", () => {
            if (request.url === "/v1/traces") {
              const parsed = JSON.parse(body) as {
                resourceSpans: Array<{ scopeSpans: Array<{ spans: Array<Span> }> }>
              }
              for (const resource of parsed.resourceSpans) {
                for (const scope of resource.scopeSpans) spans.push(...scope.spans)
              }
            }
            if (request.url === "/v1/metrics") {
              for (const match of body.matchAll(/"name":"([^"]+)"/g)) metrics.add(match[1]!)
            }
            response.writeHead(200, { "content-type": "application/json" })
            response.end("{}")
          })
        })
        server.listen(0, "127.0.0.1", () =>
          resolve({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, spans, metrics, server }))
      }
    )
  ),
  ({ server }) => Effect.promise(() => new Promise((resolve) => server.close(resolve)))
)

const attribute = (span: Span, key: string) => span.attributes?.find((a) => a.key === key)?.value.stringValue

it.effect("with tracing off, a span of the service's is not made at all; with it on, it is", () =>
  Effect.gen(function*() {
    const current = Effect.map(Effect.option(Effect.currentSpan), Option.map((span) => span.name))
    // Off: what runs inside sees no span (`Effect.withSpan` would give it a no-op one).
    expect(yield* current.pipe(withSpan("inside"), Effect.withTracerEnabled(false))).toEqual(Option.none())
    expect(yield* current.pipe(withSpan("inside"))).toEqual(Option.some("inside"))
    expect(yield* current.pipe(Effect.withSpan("inside"), Effect.withTracerEnabled(false))).toEqual(Option.some("inside"))
    // The service's own look at the current span: none, without failing, or the span.
    const ours = Effect.map(currentSpan, Option.map((span) => span.name))
    expect(yield* ours.pipe(withSpan("inside"), Effect.withTracerEnabled(false))).toEqual(Option.none())
    expect(yield* ours.pipe(withSpan("inside"))).toEqual(Option.some("inside"))
  }))

it.scopedLive("one purchase is one story: request → batch (linked) → entity message → journal → reply; print and plan link back", () =>
  Effect.gen(function*() {
    const otlp = yield* collector
    const url = yield* freshDatabaseUrl
    const service = yield* serviceResource({
      DATABASE_URL: url,
      OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
      OTEL_BSP_SCHEDULE_DELAY: "300",
      OTEL_METRIC_EXPORT_INTERVAL: "500"
    })
    const concertId = yield* Effect.promise(() => postConcert(service.port, 5, "Traced"))
    const bought = yield* Effect.promise(() =>
      rawRequest(service.port, "POST", "/api/v1/tickets", JSON.stringify({
        concert_id: concertId,
        user_id: "00000000-0000-0000-0000-000000000001"
      })))
    expect(bought.status).toBe(201)
    const ticketId = (JSON.parse(bought.body) as { id: string }).id
    const print = yield* Effect.promise(() => rawRequest(service.port, "POST", `/api/v1/tickets/${ticketId}/print`))
    expect(print.status).toBe(202)

    const byName = (name: string) => otlp.spans.filter((s) => s.name === name)
    const complete = () =>
      byName("PrintQueue.print").length > 0 &&
      byName("SeatingPlans.render").some((s) => attribute(s, "concertId") === concertId && (s.links?.length ?? 0) > 0) &&
      byName("ConcertEntity.reply").length > 0 &&
      otlp.metrics.has("ticketoverflow_purchases")
    yield* eventually(Effect.sync(complete), (done) => done, { within: "15 seconds", every: "100 millis" })

    // The request, and the batch it joined: a trace of its own that links to the request.
    const purchase = byName("TicketsHttp.purchase").find((s) => attribute(s, "concertId") === concertId)!
    expect(purchase).toBeDefined()
    const request = otlp.spans.find((s) => s.spanId === purchase.parentSpanId)!
    expect(request.name).toBe("http.server POST")
    const batch = byName("ConcertSales.batch").find((s) => s.links?.some((l) => l.spanId === purchase.spanId))!
    expect(batch).toBeDefined()
    expect(batch.traceId).not.toBe(purchase.traceId)
    expect(batch.links).toContainEqual(expect.objectContaining({ traceId: purchase.traceId, spanId: purchase.spanId }))

    // The entity message the batch sent, decided under it: the journal commit, then the reply.
    const inBatch = otlp.spans.filter((s) => s.traceId === batch.traceId)
    const message = inBatch.find((s) => s.name === "Concert.client.Purchases" && s.parentSpanId === batch.spanId)!
    expect(message).toBeDefined()
    const decided = inBatch.find((s) => s.name === "ConcertEntity.purchases")!
    expect(decided).toBeDefined()
    const ancestors = (span: Span): Array<string> => {
      const parent = inBatch.find((s) => s.spanId === span.parentSpanId)
      return parent === undefined ? [] : [parent.name, ...ancestors(parent)]
    }
    expect(ancestors(decided)).toContain("Concert.client.Purchases")
    const journal = inBatch.find((s) => s.name === "ConcertJournal.append")!
    expect(ancestors(journal)).toContain("ConcertEntity.purchases")
    const reply = inBatch.find((s) => s.name === "ConcertEntity.reply")!
    expect(reply.parentSpanId).toBe(decided.spanId)

    // The print is a trace of its own, linked to the request that asked for it.
    const printed = byName("PrintQueue.print").find((s) => attribute(s, "ticketId") === ticketId)!
    expect(printed).toBeDefined()
    const printRequest = otlp.spans.find((s) => s.spanId === printed.links?.[0]?.spanId)!
    expect(printRequest.name).toBe("http.server POST")
    expect(printed.traceId).not.toBe(printRequest.traceId)

    // The seating plan's render links to the decision that changed the seats.
    const render = byName("SeatingPlans.render").find((s) =>
      attribute(s, "concertId") === concertId && s.links?.some((l) => l.spanId === decided.spanId)
    )
    expect(render).toBeDefined()

    // Metrics go over OTLP too.
    expect(otlp.metrics).toContain("ticketoverflow_purchases")
    service.process.kill("SIGTERM")
    yield* Effect.promise(() => service.exited)
  }), 120_000)
