import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { expect, layer } from "@effect/vitest"
import { HttpServer } from "@effect/platform"
import { Cause, Effect, Exit, FiberRef, Layer, Metric, Option, Redacted } from "effect"
import * as http from "node:http"
import Pg from "pg"
import { ClusterLive } from "../../src/actors/Cluster.js"
import { TracingLive } from "../../src/App.js"
import { DecidedPurchase, Purchases } from "../../src/http/Purchases.js"
import * as Metrics from "../../src/Metrics.js"
import { MainDatabase, RoutedSqlLive } from "../../src/sql/Organisers.js"
import { TestDatabase } from "../fixtures/Database.js"
import { eventually } from "../fixtures/eventually.js"
import { json, raw, type RawResponse, TestApp } from "../fixtures/Http.js"

const alice = "00000000-0000-0000-0000-000000000001"
const bob = "00000000-0000-0000-0000-000000002357"

/** The service, and the `Purchases` its server answers plain purchases with (the same one). */
const TestLayer = Layer.merge(
  TestApp,
  Purchases.Default.pipe(Layer.provide(RoutedSqlLive), Layer.provide(ClusterLive), Layer.provide(TestDatabase), Layer.provide(TracingLive))
)

const createConcert = (capacity: number) =>
  Effect.map(
    raw("POST", "/api/v1/concerts", JSON.stringify({ name: "Route", venue: "Hall", date: "2027-05-05", capacity, status: "ACTIVE" })),
    (response) => (json(response) as { id: string }).id
  )

const body = (concertId: string, userId: string) => JSON.stringify({ concert_id: concertId, user_id: userId })

/**
 * `Purchases.route` around an app that answers 299 and says it was asked (with what
 * `DecidedPurchase` held), for `request`: what the route answered itself, and what it passed on.
 */
const routed = (request: globalThis.Request) =>
  Effect.gen(function*() {
    const purchases = yield* Purchases
    const passed: Array<Exit.Exit<HttpServerResponse.HttpServerResponse, unknown> | undefined> = []
    const app = Effect.map(FiberRef.get(DecidedPurchase), (decided) => {
      passed.push(decided)
      return HttpServerResponse.text("passed on", { status: 299 })
    })
    const response = yield* purchases.route(app).pipe(
      Effect.provideService(HttpServerRequest.HttpServerRequest, HttpServerRequest.fromWeb(request))
    )
    return { response, passed }
  })

const post = (text: string, headers: Record<string, string> = {}, path = "/api/v1/tickets") =>
  new Request(`http://127.0.0.1${path}`, {
    method: "POST",
    body: text,
    headers: { "content-type": "application/json", "content-length": String(Buffer.byteLength(text)), ...headers }
  })

const bodyText = (response: HttpServerResponse.HttpServerResponse) =>
  response.body._tag === "Uint8Array" ? new TextDecoder().decode(response.body.body) : ""

/** A 201's ticket with the parts that differ between two purchases (its id, seat) blanked out. */
const shapeOf = (response: RawResponse) => {
  const ticket = json(response) as Record<string, unknown>
  return JSON.stringify(ticket).replaceAll(String(ticket.id), "ID").replace(/"seat":\d+/, "\"seat\":0")
}

layer(TestLayer, { excludeTestServices: true, timeout: "60 seconds" })("plain purchases answered ahead of the API's router", (it) => {
  it.effect("a plain purchase is answered by the route; anything else passes on untouched", () =>
    Effect.gen(function*() {
      const concertId = yield* createConcert(100)
      const plain = yield* routed(post(body(concertId, alice)))
      expect(plain.passed).toEqual([])
      expect(plain.response.status).toBe(201)
      // A key the endpoint accepts: bought here too, and its repeat answered from the key.
      const keyed = yield* routed(post(body(concertId, bob), { "idempotency-key": "route-key-1" }))
      const again = yield* routed(post(body(concertId, bob), { "idempotency-key": "route-key-1" }))
      expect([keyed.passed, again.passed]).toEqual([[], []])
      expect([keyed.response.status, again.response.status]).toEqual([201, 201])
      expect(bodyText(again.response)).toBe(bodyText(keyed.response))
      expect(JSON.parse(bodyText(plain.response))).toMatchObject({ print_status: "NOT_PRINTED" })
      expect(bodyText(plain.response)).toContain(concertId)
      expect(bodyText(plain.response)).toContain(alice)

      const others: ReadonlyArray<globalThis.Request> = [
        post(body(concertId, alice), { "idempotency-key": "x".repeat(300) }),
        post(body(concertId, alice), { "idempotency-key": "with space" }),
        post(body(concertId, alice), { authorization: "Bearer not-a-key" }),
        post(body(concertId, alice), {}, "/api/v1/tickets?x=1"),
        post(body(concertId, alice), {}, "/api/v1/tickets/"),
        post(body(concertId, alice), { "content-type": "text/plain" }),
        // Valid, but larger than MAX_BODY_BYTES: the API answers 413 without reading it.
        post(body(concertId, alice) + " ".repeat(70 * 1024)),
        post("{\"concert_id\":"),
        post(JSON.stringify({ concert_id: concertId, user_id: alice, seat: 3 })),
        post(body(concertId, "00000000-0000-0000-0000-000000009999")),
        post(body("00000000-0000-4000-8000-000000000042", alice)),
        post(body("not-an-id", alice)),
        new Request("http://127.0.0.1/api/v1/tickets", { method: "GET" })
      ]
      for (const request of others) {
        const { passed, response } = yield* routed(request)
        expect(passed, `${request.method} ${request.url}`).toEqual([undefined])
        expect(response.status).toBe(299)
      }
    }))

  it.effect("a refusal the concert decided passes on with its outcome, and is answered as the full path answers it", () =>
    Effect.gen(function*() {
      const concertId = yield* createConcert(1)
      expect((yield* routed(post(body(concertId, alice)))).response.status).toBe(201)
      const refused = yield* routed(post(body(concertId, bob)))
      expect(refused.response.status).toBe(299)
      expect(refused.passed).toHaveLength(1)
      const decided = refused.passed[0]!
      expect(Exit.isFailure(decided)).toBe(true)
      if (Exit.isFailure(decided)) {
        expect(Option.map(Cause.failureOption(decided.cause), (error) => (error as { _tag: string })._tag)).toEqual(Option.some("SoldOut"))
      }

      // Through HTTP: the last seat, the concert's own refusal (through the route), then the
      // one answered from what this process heard (the full path). Alike, byte for byte.
      const other = yield* createConcert(1)
      expect((yield* raw("POST", "/api/v1/tickets", body(other, alice))).status).toBe(201)
      const byConcert = yield* raw("POST", "/api/v1/tickets", body(other, bob))
      const byProcess = yield* raw("POST", "/api/v1/tickets", body(other, bob))
      expect(byConcert.status).toBe(422)
      expect(byConcert.body).toBe(byProcess.body)
      expect(byConcert.headers["content-type"]).toBe(byProcess.headers["content-type"])
    }))

  it.effect("a sale through the route and through the full path are answered alike", () =>
    Effect.gen(function*() {
      const concertId = yield* createConcert(10)
      const plain = yield* raw("POST", "/api/v1/tickets", body(concertId, alice))
      // Without a content type the route passes it on; the API reads the body as JSON.
      const full = yield* raw("POST", "/api/v1/tickets", body(concertId, alice), { "content-type": "" })
      expect(plain.status).toBe(201)
      expect(full.status).toBe(201)
      expect(shapeOf(plain)).toBe(shapeOf(full))
      const headers = (response: RawResponse) => Object.keys(response.headers).filter((name) => name !== "date").sort()
      expect(headers(plain)).toEqual(headers(full))
      expect(plain.headers["content-type"]).toBe(full.headers["content-type"])
      expect(plain.headers["content-length"]).toBe(full.headers["content-length"])
    }))

  it.effect("the service answers plain purchases by the route: its counter moves for them, not for others", () =>
    Effect.gen(function*() {
      const concertId = yield* createConcert(10)
      const routed = Effect.map(Metric.value(Metrics.routedPurchases), (state) => state.count)
      const before = yield* routed
      expect((yield* raw("POST", "/api/v1/tickets", body(concertId, alice))).status).toBe(201)
      expect((yield* raw("POST", "/api/v1/tickets", body(concertId, bob), { "idempotency-key": "served-1" })).status).toBe(201)
      expect(yield* routed).toBe(before + 2)
      // Through the API: a key it refuses (400), a trailing slash (bought by the handler).
      expect((yield* raw("POST", "/api/v1/tickets", body(concertId, alice), { "idempotency-key": "x".repeat(300) })).status).toBe(400)
      expect((yield* raw("POST", "/api/v1/tickets/", body(concertId, alice))).status).toBe(201)
      expect(yield* routed).toBe(before + 2)
    }))

  it.effect("a buyer who goes away while the route waits is answered nothing and not counted; the purchase stands", () =>
    Effect.gen(function*() {
      const concertId = yield* createConcert(10)
      expect((yield* raw("POST", "/api/v1/tickets", body(concertId, alice))).status).toBe(201)
      const server = yield* HttpServer.HttpServer
      const port = server.address._tag === "TcpAddress" ? server.address.port : 0
      const main = yield* MainDatabase
      const counted = Effect.map(raw("GET", "/metrics"), (response) => {
        const line = response.body.split("\n").find((l) =>
          l.startsWith("ticketoverflow_purchases_total{") && l.includes(`concert="${concertId}"`) && l.includes("status=\"201\""))
        return Number(line?.split(" ").pop() ?? 0)
      })
      expect(yield* counted).toBe(1)
      // The journal held back by a lock on its table, so the second purchase waits for its batch.
      const locker = new Pg.Client({ connectionString: Redacted.value(main.url) })
      yield* Effect.promise(async () => {
        await locker.connect()
        await locker.query("BEGIN")
        await locker.query("LOCK TABLE tickets IN ACCESS EXCLUSIVE MODE")
      })
      yield* Effect.promise(() =>
        new Promise<void>((resolve) => {
          const text = body(concertId, bob)
          const request = http.request({
            host: "127.0.0.1",
            port,
            method: "POST",
            path: "/api/v1/tickets",
            agent: false,
            headers: { "content-type": "application/json", "content-length": String(Buffer.byteLength(text)) }
          })
          request.on("error", () => resolve())
          request.on("response", () => resolve())
          request.end(text)
          setTimeout(() => {
            request.destroy()
            resolve()
          }, 500)
        })
      )
      // The lock let go only once the service has seen the connection close: released at once,
      // the batch's answer could race the close's event.
      yield* Effect.sleep("1 second")
      yield* Effect.promise(async () => {
        await locker.query("ROLLBACK")
        await locker.end()
      })
      // The order stands: the concert sells it once its statement commits.
      const sold = Effect.promise(() =>
        (async () => {
          const client = new Pg.Client({ connectionString: Redacted.value(main.url) })
          await client.connect()
          try {
            const result = await client.query("SELECT count(*)::int AS n FROM tickets WHERE concert_id = $1", [concertId])
            return result.rows[0].n as number
          } finally {
            await client.end()
          }
        })()
      )
      yield* eventually(sold, (n) => n === 2, { within: "10 seconds" })
      // Answered nothing, so counted nothing: the counter still holds the first purchase alone.
      yield* Effect.sleep("200 millis")
      expect(yield* counted).toBe(1)
    }))
})
