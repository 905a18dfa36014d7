import { HttpServer } from "@effect/platform"
import { expect, layer } from "@effect/vitest"
import * as http from "node:http"
import { Effect, Either } from "effect"
import type { CreateConcert } from "../../src/domain/Concert.js"
import { client, json, raw, TestApp } from "../fixtures/Http.js"
import { eventually } from "../fixtures/eventually.js"

const concertBody: CreateConcert = { name: "Elsa on Ice", venue: "The Gabba", date: "2027-06-07", capacity: 3, status: "ACTIVE" }
const alice = "00000000-0000-0000-0000-000000000001"
const bob = "00000000-0000-0000-0000-000000002357"

const createConcert = (overrides: Partial<CreateConcert> = {}) =>
  Effect.flatMap(client, (api) => api.concerts.create({ payload: { ...concertBody, ...overrides } }))

/** GET the printed ticket until it is there (the render runs in the background). */
const waitForPrinted = (ticketId: string) =>
  eventually(raw("GET", `/api/v1/tickets/${ticketId}/print`), (response) => response.status === 200, { within: "15 seconds" })

const purchase = (concertId: string, userId: string, headers: Record<string, string> = {}) =>
  raw("POST", "/api/v1/tickets", JSON.stringify({ concert_id: concertId, user_id: userId }), headers)

layer(TestApp, { excludeTestServices: true, timeout: "60 seconds" })("TicketOverflow API", (it) => {
  it.effect("health endpoints answer 200 JSON while the database is up", () =>
    Effect.gen(function*() {
      for (const group of ["concerts", "tickets", "users"]) {
        const response = yield* raw("GET", `/api/v1/${group}/health`)
        expect(response.status).toBe(200)
        expect(response.headers["content-type"]).toBe("application/json")
        expect(json(response)).toEqual({ status: "healthy", database: "up" })
      }
    }))

  it.effect("users: the fixed list of 5,000, one user, 404 for an unknown id", () =>
    Effect.gen(function*() {
      const api = yield* client
      const users = yield* api.users.list()
      expect(users).toHaveLength(5000)
      expect(users[0]!.id).toBe("00000000-0000-0000-0000-000000000001")
      expect(users[4999]!.id).toBe("00000000-0000-0000-0000-000000005000")
      expect(yield* api.users.get({ path: { id: bob } })).toEqual(users[2356])
      const list = yield* raw("GET", "/api/v1/users")
      expect(list.headers["content-type"]).toBe("application/json")
      const missing = yield* raw("GET", "/api/v1/users/nobody")
      expect(missing.status).toBe(404)
      expect(json(missing)).toEqual({ error: "user nobody does not exist" })
    }))

  it.effect("concerts: the object from POST equals GET and the list entry; PUT changes a subset", () =>
    Effect.gen(function*() {
      const created = yield* raw("POST", "/api/v1/concerts", JSON.stringify(concertBody))
      expect(created.status).toBe(201)
      expect(created.headers["content-type"]).toBe("application/json")
      const concert = json(created) as { id: string }
      expect(concert).toEqual({ id: concert.id, ...concertBody })
      expect(Object.keys(concert)).toEqual(["id", "name", "venue", "date", "capacity", "status"])

      const got = yield* raw("GET", `/api/v1/concerts/${concert.id}`)
      expect(got.status).toBe(200)
      expect(got.body).toBe(created.body)
      const list = yield* raw("GET", "/api/v1/concerts")
      expect(list.headers["content-type"]).toBe("application/json")
      expect((json(list) as Array<unknown>)).toContainEqual(concert)

      const put = yield* raw("PUT", `/api/v1/concerts/${concert.id}`, JSON.stringify({ name: "Bob on Ice" }))
      expect(put.status).toBe(200)
      expect(json(put)).toEqual({ ...concert, name: "Bob on Ice" })
      expect((yield* raw("GET", `/api/v1/concerts/${concert.id}`)).body).toBe(put.body)

      const cancelled = yield* raw("PUT", `/api/v1/concerts/${concert.id}`, JSON.stringify({ status: "CANCELLED", venue: "Suncorp" }))
      expect(json(cancelled)).toEqual({ ...concert, name: "Bob on Ice", venue: "Suncorp", status: "CANCELLED" })

      for (const body of [{ capacity: 10 }, { id: concert.id }, { name: "" }, { status: "OPEN" }, { date: "2027-02-30" }]) {
        const refused = yield* raw("PUT", `/api/v1/concerts/${concert.id}`, JSON.stringify(body))
        expect(refused.status).toBe(400)
        expect(typeof (json(refused) as { error: unknown }).error).toBe("string")
      }
      expect((yield* raw("PUT", "/api/v1/concerts/00000000-0000-4000-8000-000000000000", "{}")).status).toBe(404)
      expect((yield* raw("PUT", "/api/v1/concerts/999999999", "{\"name\":\"x\"}")).status).toBe(404)
      expect((yield* raw("GET", "/api/v1/concerts/999999999")).status).toBe(404)
    }))

  it.effect("bodies must be JSON: other declared types are 415 and change nothing (no cross-site form posts)", () =>
    Effect.gen(function*() {
      const before = (json(yield* raw("GET", "/api/v1/concerts")) as Array<unknown>).length
      for (const type of ["application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x"]) {
        const refused = yield* raw("POST", "/api/v1/concerts", JSON.stringify(concertBody), { "content-type": type })
        expect(refused.status).toBe(415)
        expect(refused.headers["content-type"]).toBe("application/json")
        expect(json(refused)).toEqual({ error: "request bodies must be JSON, sent with Content-Type: application/json" })
      }
      expect((json(yield* raw("GET", "/api/v1/concerts")) as Array<unknown>).length).toBe(before)
      // JSON with parameters, and a body sent without a type, are read as JSON.
      const withCharset = yield* raw("POST", "/api/v1/concerts", JSON.stringify(concertBody), {
        "content-type": "application/json; charset=utf-8"
      })
      expect(withCharset.status).toBe(201)
      const untyped = yield* raw("POST", "/api/v1/concerts", JSON.stringify(concertBody), { "content-type": "" })
      expect(untyped.status).toBe(201)
      const malformed = yield* raw("POST", "/api/v1/concerts", "name=x&venue=y")
      expect(malformed.status).toBe(400)
      expect(json(malformed)).toEqual({ error: "request body is not valid JSON" })
    }))

  it.effect("chunked bodies (no Content-Length): read as any other, and a readable 413 when too large", () =>
    Effect.gen(function*() {
      const { port } = (yield* HttpServer.HttpServer).address as { readonly port: number }
      const sendChunked = (pieces: ReadonlyArray<string>) =>
        Effect.promise(() =>
          new Promise<{ status: number; body: string }>((resolve, reject) => {
            const request = http.request({
              host: "127.0.0.1",
              port,
              method: "POST",
              path: "/api/v1/concerts",
              headers: { "content-type": "application/json", "transfer-encoding": "chunked" }
            }, (response) => {
              let body = ""
              response.on("data", (chunk: Buffer) => (body += chunk.toString()))
              response.on("end", () => resolve({ status: response.statusCode ?? 0, body }))
            })
            request.on("error", reject)
            for (const piece of pieces) request.write(piece)
            request.end()
          })
        )
      const body = JSON.stringify(concertBody)
      const created = yield* sendChunked([body.slice(0, 10), body.slice(10)])
      expect(created.status).toBe(201)
      expect(JSON.parse(created.body)).toMatchObject(concertBody)
      const tooLarge = yield* sendChunked(Array.from({ length: 20 }, () => "x".repeat(10_000)))
      expect(tooLarge.status).toBe(413)
      expect(JSON.parse(tooLarge.body)).toEqual({ error: "request body is larger than 65536 bytes" })
    }))

  it.effect("a Host header that is not a host name is refused, not written into ticket links", () =>
    Effect.gen(function*() {
      const refused = yield* raw("GET", "/api/v1/concerts", undefined, { host: "evil.example/phish?x=" })
      expect(refused.status).toBe(400)
      expect(json(refused)).toEqual({ error: "the Host header is not a host name" })
      for (const host of ["tickets.example.com", "tickets.example.com:8443", "10.0.0.5:8080", "[::1]:8080", "svc_name"]) {
        expect({ host, status: (yield* raw("GET", "/api/v1/concerts", undefined, { host })).status }).toEqual({ host, status: 200 })
      }
    }))

  it.effect("tickets: exact links, equal objects everywhere, SOLD_OUT on the last seat, 422 after", () =>
    Effect.gen(function*() {
      const concert = yield* createConcert()
      const bought = yield* purchase(concert.id, bob)
      expect(bought.status).toBe(201)
      expect(bought.headers["content-type"]).toBe("application/json")
      const ticket = json(bought) as { id: string }
      expect(ticket).toEqual({
        id: ticket.id,
        concert: { id: concert.id, url: expect.stringMatching(new RegExp(`^http://127\\.0\\.0\\.1:\\d+/api/v1/concerts/${concert.id}$`)) },
        user: { id: bob, url: expect.stringMatching(new RegExp(`^http://127\\.0\\.0\\.1:\\d+/api/v1/users/${bob}$`)) },
        print_status: "NOT_PRINTED"
      })
      expect(Object.keys(ticket)).toEqual(["id", "concert", "user", "print_status"])

      const got = yield* raw("GET", `/api/v1/tickets/${ticket.id}`)
      expect(got.body).toBe(bought.body)
      const byConcert = yield* raw("GET", `/api/v1/tickets?concert_id=${concert.id}`)
      expect(json(byConcert)).toEqual([ticket])
      const both = yield* raw("GET", `/api/v1/tickets?concert_id=${concert.id}&user_id=${bob}`)
      expect(json(both)).toEqual([ticket])
      const byUser = yield* raw("GET", `/api/v1/tickets?user_id=${bob}`)
      expect(json(byUser)).toContainEqual(ticket)
      const all = yield* raw("GET", "/api/v1/tickets")
      expect(json(all)).toContainEqual(ticket)

      expect((yield* purchase(concert.id, alice)).status).toBe(201)
      expect((yield* purchase(concert.id, alice)).status).toBe(201)
      const soldOut = yield* purchase(concert.id, alice)
      expect(soldOut.status).toBe(422)
      expect(json(soldOut)).toEqual({ error: "the concert is sold out" })
      const api = yield* client
      expect((yield* api.concerts.get({ path: { id: Either.right(concert.id) } })).status).toBe("SOLD_OUT")
      expect(yield* api.tickets.list({ urlParams: { concert_id: Either.right(concert.id) } })).toHaveLength(3)
    }))

  it.effect("ids written in capitals name the same things, and every answer writes them as the service does", () =>
    Effect.gen(function*() {
      const concert = yield* createConcert()
      const upper = concert.id.toUpperCase()
      const bought = yield* purchase(upper, bob)
      expect(bought.status).toBe(201)
      const ticket = json(bought) as { id: string; concert: { id: string; url: string } }
      expect(ticket.concert.id).toBe(concert.id)
      expect(ticket.concert.url.endsWith(`/concerts/${concert.id}`)).toBe(true)
      expect((yield* raw("GET", `/api/v1/tickets/${ticket.id}`)).body).toBe(bought.body)
      expect((yield* raw("GET", `/api/v1/tickets/${ticket.id.toUpperCase()}`)).body).toBe(bought.body)
      expect(json(yield* raw("GET", `/api/v1/concerts/${upper}`))).toEqual(concert)
      expect(json(yield* raw("GET", `/api/v1/tickets?concert_id=${upper}`))).toEqual([ticket])
    }))

  it.effect("tickets: filters name existing users and concerts (404 otherwise, [] when none)", () =>
    Effect.gen(function*() {
      const concert = yield* createConcert()
      const empty = yield* raw("GET", `/api/v1/tickets?concert_id=${concert.id}`)
      expect(empty.status).toBe(200)
      expect(empty.body).toBe("[]")
      expect((yield* raw("GET", "/api/v1/tickets?user_id=00000000-0000-0000-0000-000000004999")).body).toBe("[]")
      expect((yield* raw("GET", "/api/v1/tickets?user_id=nobody")).status).toBe(404)
      expect((yield* raw("GET", "/api/v1/tickets?concert_id=00000000-0000-4000-8000-000000000000")).status).toBe(404)
      expect((yield* raw("GET", "/api/v1/tickets?concert_id=garbage")).status).toBe(404)
    }))

  it.effect("purchases: unknown user or concert 400, cancelled concert 422", () =>
    Effect.gen(function*() {
      const concert = yield* createConcert({ status: "CANCELLED" })
      const cancelled = yield* purchase(concert.id, bob)
      expect(cancelled.status).toBe(422)
      expect(json(cancelled)).toEqual({ error: "the concert is cancelled" })
      expect((yield* purchase(concert.id, "nobody")).status).toBe(400)
      expect((yield* purchase("00000000-0000-4000-8000-000000000000", bob)).status).toBe(400)
      expect((yield* purchase("not-a-concert", bob)).status).toBe(400)
    }))

  it.effect("purchases: an organiser who closes sales and reopens them sells again at once", () =>
    Effect.gen(function*() {
      const concert = yield* createConcert({ capacity: 5 })
      expect((yield* raw("PUT", `/api/v1/concerts/${concert.id}`, JSON.stringify({ status: "SOLD_OUT" }))).status).toBe(200)
      expect((yield* purchase(concert.id, bob)).status).toBe(422)
      expect((yield* purchase(concert.id, bob)).status).toBe(422)
      expect((yield* raw("PUT", `/api/v1/concerts/${concert.id}`, JSON.stringify({ status: "ACTIVE" }))).status).toBe(200)
      expect((yield* purchase(concert.id, bob)).status).toBe(201)
      expect((yield* raw("PUT", `/api/v1/concerts/${concert.id}`, JSON.stringify({ status: "CANCELLED" }))).status).toBe(200)
      expect(json(yield* purchase(concert.id, bob))).toEqual({ error: "the concert is cancelled" })
      expect(json(yield* purchase(concert.id, bob))).toEqual({ error: "the concert is cancelled" })
    }))

  it.effect("purchases: an Idempotency-Key repeat returns the first ticket; another body with it is 422", () =>
    Effect.gen(function*() {
      const concert = yield* createConcert({ capacity: 10 })
      const headers = { "idempotency-key": "retry-me-123" }
      const first = yield* purchase(concert.id, bob, headers)
      const again = yield* purchase(concert.id, bob, headers)
      expect(first.status).toBe(201)
      expect(again.status).toBe(201)
      expect(again.body).toBe(first.body)
      expect((json(yield* raw("GET", `/api/v1/tickets?concert_id=${concert.id}`)) as Array<unknown>)).toHaveLength(1)
      const other = yield* purchase(concert.id, alice, headers)
      expect(other.status).toBe(422)
      const elsewhere = yield* createConcert()
      expect((yield* purchase(elsewhere.id, bob, headers)).status).toBe(422)
      expect((yield* purchase(concert.id, bob, { "idempotency-key": "x".repeat(300) })).status).toBe(400)
    }))

  it.effect("purchases: a keyed retry of the purchase that took the last seat gets its ticket, not 'sold out'", () =>
    Effect.gen(function*() {
      const concert = yield* createConcert({ capacity: 1 })
      const headers = { "idempotency-key": "last-seat-1" }
      const first = yield* purchase(concert.id, bob, headers)
      expect(first.status).toBe(201)
      // An unkeyed loser makes this process remember the concert as sold out...
      const loser = yield* purchase(concert.id, alice)
      expect(loser.status).toBe(422)
      expect(json(loser)).toEqual({ error: "the concert is sold out" })
      // ...which must not shadow what the key bought.
      const again = yield* purchase(concert.id, bob, headers)
      expect(again.status).toBe(201)
      expect(again.body).toBe(first.body)
      // A new key is still sold out.
      expect((yield* purchase(concert.id, bob, { "idempotency-key": "last-seat-2" })).status).toBe(422)
    }))

  it.effect("printing: 202 with the ticket PENDING, then PRINTED and its SVG served; 404 for unknown tickets", () =>
    Effect.gen(function*() {
      const concert = yield* createConcert()
      const ticket = json(yield* purchase(concert.id, bob)) as { id: string }
      expect((yield* raw("GET", `/api/v1/tickets/${ticket.id}/print`)).status).toBe(404)
      const print = yield* raw("POST", `/api/v1/tickets/${ticket.id}/print`)
      expect(print.status).toBe(202)
      const status = (json(yield* raw("GET", `/api/v1/tickets/${ticket.id}`)) as { print_status: string }).print_status
      expect(["PENDING", "PRINTED"]).toContain(status)
      const printed = yield* waitForPrinted(ticket.id)
      expect(printed.status).toBe(200)
      expect(printed.headers["content-type"]).toBe("image/svg+xml")
      expect(printed.body).toContain(`<desc>${ticket.id}</desc>`)
      expect(printed.body).toContain(concert.name)
      expect((yield* raw("POST", "/api/v1/tickets/invalid_ticket_id/print")).status).toBe(404)
      expect((yield* raw("GET", "/api/v1/tickets/invalid_ticket_id/print")).status).toBe(404)
    }))

  it.effect("renaming a concert unprints its tickets at once; a reprint shows the new name", () =>
    Effect.gen(function*() {
      const concert = yield* createConcert({ name: "Elsa on Ice", capacity: 10 })
      const ids = (yield* Effect.forEach([1, 2, 3], () => purchase(concert.id, bob))).map((r) => (json(r) as { id: string }).id)
      yield* Effect.forEach(ids, (id) => raw("POST", `/api/v1/tickets/${id}/print`))
      yield* Effect.forEach(ids, waitForPrinted)
      const renamed = yield* raw("PUT", `/api/v1/concerts/${concert.id}`, JSON.stringify({ name: "Bob on Ice" }))
      expect(renamed.status).toBe(200)
      for (const id of ids) {
        expect((json(yield* raw("GET", `/api/v1/tickets/${id}`)) as { print_status: string }).print_status).toBe("NOT_PRINTED")
        expect((yield* raw("GET", `/api/v1/tickets/${id}/print`)).status).toBe(404)
      }
      yield* raw("POST", `/api/v1/tickets/${ids[0]}/print`)
      const reprinted = yield* waitForPrinted(ids[0]!)
      expect(reprinted.body).toContain("Bob on Ice")
      expect(reprinted.body).not.toContain("Elsa on Ice")
    }))

  it.effect("seating plans: 404 for unknown concerts", () =>
    Effect.gen(function*() {
      expect((yield* raw("GET", "/api/v1/concerts/999999999/seats")).status).toBe(404)
      expect((yield* raw("GET", "/api/v1/concerts/00000000-0000-4000-8000-000000000000/seats")).status).toBe(404)
    }))

  it.effect("serves its OpenAPI document and browsable docs", () =>
    Effect.gen(function*() {
      const spec = yield* raw("GET", "/api/v1/openapi.json")
      expect(spec.status).toBe(200)
      const paths = Object.keys((json(spec) as { paths: Record<string, unknown> }).paths)
      expect(paths).toEqual(expect.arrayContaining(["/api/v1/tickets", "/api/v1/concerts/{id}/seats", "/api/v1/users/{id}"]))
      // It says what each endpoint can answer, by name, from the same declarations that make
      // the responses, and every error's body is `{"error": string}`.
      const document = json(spec) as {
        paths: Record<string, Record<string, { responses: Record<string, { content?: unknown }> }>>
        components: { schemas: Record<string, unknown> }
      }
      const purchase = document.paths["/api/v1/tickets"]!["post"]!.responses
      // 401: a bearer token that is no organiser's key, on any endpoint (ONSALE.md §5).
      expect(Object.keys(purchase)).toEqual(["201", "400", "401", "409", "413", "422", "503"])
      expect(JSON.stringify(purchase["401"]!.content)).toContain("#/components/schemas/Unauthorized")
      expect(JSON.stringify(purchase["422"]!.content)).toContain("#/components/schemas/SoldOut")
      expect(JSON.stringify(purchase["422"]!.content)).toContain("#/components/schemas/IdempotencyKeyReused")
      expect(JSON.stringify(purchase["400"]!.content)).toContain("#/components/schemas/UnknownUser")
      expect(JSON.stringify(purchase["503"]!.content)).toContain("#/components/schemas/Busy")
      expect(JSON.stringify(document.paths["/api/v1/tickets/{id}/print"]!["get"]!.responses["404"]!.content))
        .toContain("#/components/schemas/TicketNotPrinted")
      expect(document.components.schemas["SoldOut"]).toEqual({
        type: "object",
        required: ["error"],
        properties: { error: { type: "string" } },
        additionalProperties: false
      })
      const docs = yield* raw("GET", "/docs")
      expect(docs.status).toBe(200)
      expect(docs.headers["content-type"]).toContain("text/html")
    }))
})
