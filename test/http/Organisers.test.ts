/**
 * Organisers (ONSALE.md §5): two organisers, each with concerts, tickets, reservations,
 * registrations and invoices. Every endpoint is tried on one's data with the other's key, with no
 * key and with a wrong key: nothing of one is visible to or changeable by the other, another's id
 * is answered exactly as an unknown one, and each one's rows are in its own database.
 */
import { layer } from "@effect/vitest"
import * as SqlClient from "@effect/sql/SqlClient"
import { Effect, Redacted } from "effect"
import { expect } from "vitest"
import { MainDatabase } from "../../src/sql/Organisers.js"
import { organiserDatabase } from "../fixtures/Database.js"
import { json, raw, type RawResponse, TestAppWith } from "../fixtures/Http.js"

const adminToken = "an-admin-token-for-the-tests"
const admin = { authorization: `Bearer ${adminToken}` }
const bearer = (key: string) => ({ authorization: `Bearer ${key}` })
const user = (n: number) => `00000000-0000-0000-0000-${String(n).padStart(12, "0")}`

interface Organiser {
  readonly id: string
  readonly name: string
  readonly api_key: string
}

interface Holdings {
  readonly key: string
  readonly concert: string
  readonly drawConcert: string
  readonly ticket: string
  readonly reservation: string
  readonly registration: string
}

const body = (value: unknown) => JSON.stringify(value)
const errorOf = (response: RawResponse) => (json(response) as { error: string }).error

const createOrganiser = (name: string) =>
  Effect.gen(function*() {
    const response = yield* raw("POST", "/api/v1/organisers", body({ name }), admin)
    expect(response.status).toBe(201)
    return json(response) as Organiser
  })

/** A concert on sale, a DRAW concert before its draw, a ticket, a checked-out reservation, a registration. */
const holdings = (key: string | undefined, name: string) =>
  Effect.gen(function*() {
    const owner = key === undefined ? {} : bearer(key)
    const concert = json(
      yield* raw("POST", "/api/v1/concerts", body({ name, venue: "Hall", date: "2027-03-03", capacity: 20, status: "ACTIVE" }), owner)
    ) as { id: string }
    const drawConcert = json(
      yield* raw("POST", "/api/v1/concerts", body({ name: `${name} draw`, venue: "Hall", date: "2027-03-04", capacity: 5, status: "ACTIVE" }), owner)
    ) as { id: string }
    const opensAt = new Date(Date.now() + 3_600_000).toISOString()
    expect((yield* raw("PUT", `/api/v1/concerts/${drawConcert.id}/sale`, body({ mode: "DRAW", opens_at: opensAt }), owner)).status).toBe(200)
    // Buyers need no key.
    const ticket = yield* raw("POST", "/api/v1/tickets", body({ concert_id: concert.id, user_id: user(1) }))
    expect(ticket.status).toBe(201)
    const reservation = yield* raw("POST", "/api/v1/reservations", body({ concert_id: concert.id, user_id: user(2), quantity: 2 }))
    expect(reservation.status).toBe(201)
    const reservationId = (json(reservation) as { id: string }).id
    const checkout = yield* raw("POST", `/api/v1/reservations/${reservationId}/checkout`)
    expect(checkout.status).toBe(200)
    expect((json(checkout) as { invoice_number: number }).invoice_number).toBeGreaterThanOrEqual(1)
    const registration = yield* raw("POST", `/api/v1/concerts/${drawConcert.id}/registrations`, body({ user_id: user(3), quantity: 1 }))
    expect(registration.status).toBe(201)
    return {
      key: key ?? "",
      concert: concert.id,
      drawConcert: drawConcert.id,
      ticket: (json(ticket) as { id: string }).id,
      reservation: reservationId,
      registration: (json(registration) as { id: string }).id
    } satisfies Holdings
  })

/** The same id with other random bits: the same organiser, but nothing's. */
const unknownLike = (id: string) => id.slice(0, 19) + "aaaa-" + "0123456789ab"

/** Every request on `h`'s data that someone else must not see or change, by what it names. */
const probes = (h: Holdings) => [
  { method: "GET", path: `/api/v1/concerts/${h.concert}`, id: h.concert },
  { method: "PUT", path: `/api/v1/concerts/${h.concert}`, id: h.concert, body: body({ name: "taken over" }) },
  { method: "GET", path: `/api/v1/concerts/${h.concert}/seats`, id: h.concert },
  { method: "GET", path: `/api/v1/concerts/${h.concert}/sale`, id: h.concert },
  { method: "PUT", path: `/api/v1/concerts/${h.concert}/sale`, id: h.concert, body: body({ max_per_reservation: 1 }) },
  { method: "GET", path: `/api/v1/concerts/${h.drawConcert}/draw`, id: h.drawConcert },
  { method: "POST", path: `/api/v1/concerts/${h.drawConcert}/registrations`, id: h.drawConcert, body: body({ user_id: user(9), quantity: 1 }) },
  { method: "GET", path: `/api/v1/concerts/${h.drawConcert}/registrations`, id: h.drawConcert },
  { method: "GET", path: `/api/v1/concerts/${h.drawConcert}/registrations/${h.registration}`, id: h.drawConcert },
  { method: "DELETE", path: `/api/v1/concerts/${h.drawConcert}/registrations/${h.registration}`, id: h.drawConcert },
  { method: "GET", path: `/api/v1/tickets?concert_id=${h.concert}`, id: h.concert },
  { method: "GET", path: `/api/v1/tickets/${h.ticket}`, id: h.ticket },
  { method: "POST", path: `/api/v1/tickets/${h.ticket}/print`, id: h.ticket },
  { method: "GET", path: `/api/v1/tickets/${h.ticket}/print`, id: h.ticket },
  { method: "POST", path: "/api/v1/tickets", id: h.concert, body: body({ concert_id: h.concert, user_id: user(9) }) },
  { method: "POST", path: "/api/v1/reservations", id: h.concert, body: body({ concert_id: h.concert, user_id: user(9), quantity: 1 }) },
  { method: "GET", path: `/api/v1/reservations?concert_id=${h.concert}`, id: h.concert },
  { method: "GET", path: `/api/v1/reservations/${h.reservation}`, id: h.reservation },
  { method: "POST", path: `/api/v1/reservations/${h.reservation}/checkout`, id: h.reservation },
  { method: "POST", path: `/api/v1/reservations/${h.reservation}/payment`, id: h.reservation },
  { method: "DELETE", path: `/api/v1/reservations/${h.reservation}`, id: h.reservation }
] as ReadonlyArray<{ method: string; path: string; id: string; body?: string }>

/** What an organiser's own data looks like through the API, to see that nobody else changed it. */
const snapshot = (h: Holdings) =>
  Effect.gen(function*() {
    const owner = bearer(h.key)
    const parts = yield* Effect.all([
      raw("GET", `/api/v1/concerts/${h.concert}`, undefined, owner),
      raw("GET", `/api/v1/concerts/${h.concert}/sale`, undefined, owner),
      raw("GET", `/api/v1/tickets?concert_id=${h.concert}`, undefined, owner),
      raw("GET", `/api/v1/reservations?concert_id=${h.concert}`, undefined, owner),
      raw("GET", `/api/v1/concerts/${h.drawConcert}/registrations/${h.registration}`, undefined, owner),
      raw("GET", "/api/v1/invoices", undefined, owner)
    ])
    for (const part of parts) expect(part.status).toBe(200)
    return parts.map((part) => part.body)
  })

// Lists a page of one row at a time: every list is read over several pages, each of which
// must come from the same organiser's database as the first.
layer(TestAppWith({ ADMIN_TOKEN: adminToken, RENDER_WORKERS: "1", TICKETS_PAGE_SIZE: "1" }), {
  excludeTestServices: true,
  timeout: "120 seconds"
})(
  "organisers",
  (it) => {
    it.effect("POST /organisers needs the ADMIN_TOKEN, answers the key once, and checks what it is given", () =>
      Effect.gen(function*() {
        const request = body({ name: "Nobody" })
        const noKey = yield* raw("POST", "/api/v1/organisers", request)
        expect(noKey.status).toBe(401)
        expect(noKey.headers["www-authenticate"]).toBe("Bearer")
        const wrong = yield* raw("POST", "/api/v1/organisers", request, bearer("not-the-token"))
        expect(wrong.status).toBe(401)
        expect(wrong.headers["www-authenticate"]).toBe("Bearer")
        expect(json(wrong)).toEqual({ error: "the API key is not valid" })
        const organiser = yield* createOrganiser("Acme Live")
        expect(organiser.name).toBe("Acme Live")
        expect(organiser.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
        expect(organiser.api_key).toMatch(/^tko_[0-9a-z]+_[A-Za-z0-9_-]{43}$/)
        // An organiser's key is not the admin's.
        expect((yield* raw("POST", "/api/v1/organisers", request, bearer(organiser.api_key))).status).toBe(401)
        expect((yield* raw("POST", "/api/v1/organisers", body({ name: "" }), admin)).status).toBe(400)
        expect((yield* raw("POST", "/api/v1/organisers", body({}), admin)).status).toBe(400)
        const badUrl = yield* raw("POST", "/api/v1/organisers", body({ name: "X", database_url: "mysql://x" }), admin)
        expect(badUrl.status).toBe(422)
        const unreachable = yield* raw("POST", "/api/v1/organisers", body({ name: "X", database_url: "postgres://u@127.0.0.1:1/x" }), admin)
        expect(unreachable.status).toBe(422)
        expect(errorOf(unreachable)).toContain("database_url could not be used")
        // Nor the main database, or any other that holds this service's data: it would be shared.
        const main = yield* MainDatabase
        const shared = yield* raw("POST", "/api/v1/organisers", body({ name: "X", database_url: Redacted.value(main.url) }), admin)
        expect(shared.status).toBe(422)
        expect(errorOf(shared)).toContain("already holds TicketOverflow data")
        // Nor one that two creations name at once: one of them gets it.
        // (Named as the suite's organisers' databases are, so that the suite drops it too.)
        const emptyUrl = new URL(Redacted.value(main.url))
        const emptyName = `${emptyUrl.pathname.slice(1)}_organiser_shared`
        emptyUrl.pathname = `/${emptyName}`
        const empty = emptyUrl.toString()
        yield* (yield* SqlClient.SqlClient).unsafe(`CREATE DATABASE ${emptyName}`)
        const both = yield* Effect.all([
          raw("POST", "/api/v1/organisers", body({ name: "Twin 1", database_url: empty }), admin),
          raw("POST", "/api/v1/organisers", body({ name: "Twin 2", database_url: empty }), admin)
        ], { concurrency: 2 })
        expect(both.map((r) => r.status).sort()).toEqual([201, 422])

        // The key is stored as a hash: neither it nor its secret part is in the directory.
        const sql = yield* SqlClient.SqlClient
        const rows = yield* sql<{ key_sha256: Buffer }>`SELECT key_sha256 FROM organisers WHERE id = ${organiser.id}`
        expect(rows).toHaveLength(1)
        const secret = organiser.api_key.split("_").at(-1)!
        expect(rows[0]!.key_sha256.toString("hex")).not.toContain(Buffer.from(secret).toString("hex"))
        expect(rows[0]!.key_sha256.length).toBe(32)
      }))

    it.effect("two organisers: every endpoint, with the other's key, no key or a wrong key, sees and changes nothing of the other's", () =>
      Effect.gen(function*() {
        const a = yield* createOrganiser("Organiser A")
        const b = yield* createOrganiser("Organiser B")
        const hd = yield* holdings(undefined, "The default organiser's concert")
        const ha = yield* holdings(a.api_key, "A's concert")
        const hb = yield* holdings(b.api_key, "B's concert")
        // Ids say whose they are; the default organiser's are plain random UUIDs.
        for (const id of [ha.concert, ha.ticket, ha.reservation, ha.registration]) expect(id.slice(0, 8)).toBe(a.id.slice(0, 8))
        for (const id of [hb.concert, hb.ticket, hb.reservation, hb.registration]) expect(id.slice(0, 8)).toBe(b.id.slice(0, 8))
        const before = { a: yield* snapshot(ha), b: yield* snapshot(hb) }

        for (const [mine, theirs] of [[ha, hb], [hb, ha]] as const) {
          for (const probe of probes(theirs)) {
            // With my key, their id is exactly an id of theirs that names nothing.
            const answered = yield* raw(probe.method, probe.path, probe.body, bearer(mine.key))
            const unknownId = unknownLike(probe.id)
            const unknown = yield* raw(probe.method, probe.path.replaceAll(probe.id, unknownId), probe.body?.replaceAll(probe.id, unknownId), bearer(mine.key))
            expect(answered.status, `${probe.method} ${probe.path}`).toBe(unknown.status)
            expect(answered.body.replaceAll(probe.id, "ID"), `${probe.method} ${probe.path}`).toBe(unknown.body.replaceAll(unknownId, "ID"))
            expect([400, 404]).toContain(answered.status)
            // And a wrong key is 401, whatever it asks.
            const wrong = yield* raw(probe.method, probe.path, probe.body, bearer(`${mine.key.slice(0, -4)}AAAA`))
            expect(wrong.status, `${probe.method} ${probe.path}`).toBe(401)
            expect(json(wrong)).toEqual({ error: "the API key is not valid" })
          }
          // Lists with my key hold only mine.
          for (const list of ["/api/v1/concerts", "/api/v1/tickets", "/api/v1/reservations", "/api/v1/invoices"]) {
            const listed = yield* raw("GET", list, undefined, bearer(mine.key))
            expect(listed.status).toBe(200)
            for (const id of [theirs.concert, theirs.drawConcert, theirs.ticket, theirs.reservation, hd.concert, hd.ticket, hd.reservation]) {
              expect(listed.body, list).not.toContain(id)
            }
          }
          const concerts = json(yield* raw("GET", "/api/v1/concerts", undefined, bearer(mine.key))) as Array<{ id: string }>
          expect(concerts.map((c) => c.id).sort()).toEqual([mine.concert, mine.drawConcert].sort())
          const tickets = json(yield* raw("GET", "/api/v1/tickets", undefined, bearer(mine.key))) as Array<{ id: string }>
          expect(tickets.map((t) => t.id)).toEqual([mine.ticket])
          const reservations = json(yield* raw("GET", "/api/v1/reservations", undefined, bearer(mine.key))) as Array<{ id: string }>
          expect(reservations.map((r) => r.id)).toEqual([mine.reservation])

          // Each organiser's invoice numbers are its own, from 1.
          const invoices = json(yield* raw("GET", "/api/v1/invoices", undefined, bearer(mine.key))) as Array<{ reservation_id: string }>
          expect(invoices).toEqual([{ number: 1, reservation_id: mine.reservation, status: "AWAITING_PAYMENT" }])
        }

        // Without a key: a buyer reads and acts on anyone's by id; owners' actions are the
        // default organiser's, so another organiser's concert is unknown to them.
        for (const h of [ha, hb]) {
          expect((yield* raw("GET", `/api/v1/concerts/${h.concert}`)).status).toBe(200)
          expect((yield* raw("GET", `/api/v1/concerts/${h.concert}/sale`)).status).toBe(200)
          expect((yield* raw("GET", `/api/v1/tickets/${h.ticket}`)).status).toBe(200)
          expect((yield* raw("GET", `/api/v1/reservations/${h.reservation}`)).status).toBe(200)
          expect((yield* raw("GET", `/api/v1/concerts/${h.drawConcert}/registrations/${h.registration}`)).status).toBe(200)
          // Before its draw, a draw's audit is its owner's alone.
          expect((yield* raw("GET", `/api/v1/concerts/${h.drawConcert}/draw`)).status).toBe(404)
          expect((yield* raw("GET", `/api/v1/concerts/${h.drawConcert}/draw`, undefined, bearer(h.key))).status).toBe(200)
          for (const [method, path, sent] of [
            ["PUT", `/api/v1/concerts/${h.concert}`, body({ name: "taken over" })],
            ["PUT", `/api/v1/concerts/${h.concert}/sale`, body({ max_per_reservation: 1 })],
            ["GET", `/api/v1/tickets?concert_id=${h.concert}`, undefined],
            ["GET", `/api/v1/reservations?concert_id=${h.concert}`, undefined]
          ] as const) {
            const answered = yield* raw(method, path, sent)
            expect(answered.status, `${method} ${path}`).toBe(404)
            expect(errorOf(answered)).toBe(`concert ${h.concert} does not exist`)
          }
          const lists = yield* Effect.all([
            raw("GET", "/api/v1/concerts"),
            raw("GET", "/api/v1/tickets"),
            raw("GET", "/api/v1/reservations"),
            raw("GET", "/api/v1/invoices")
          ])
          for (const list of lists) {
            expect(list.status).toBe(200)
            expect(list.body).not.toContain(h.concert)
            expect(list.body).not.toContain(h.ticket)
            expect(list.body).not.toContain(h.reservation)
          }
        }

        // Nothing changed: the same answers as before, to their owners.
        expect(yield* snapshot(ha)).toEqual(before.a)
        expect(yield* snapshot(hb)).toEqual(before.b)

        // Each organiser's rows are in its own database, and not in the main one or the other's.
        const sql = yield* SqlClient.SqlClient
        const databases = yield* sql<{ number: number; database_name: string }>`
          SELECT number, database_name FROM organisers WHERE id IN (${a.id}, ${b.id}) ORDER BY number`
        expect(new Set(databases.map((d) => d.database_name)).size).toBe(2)
        const rowsIn = (organiserId: string) =>
          Effect.flatMap(organiserDatabase(organiserId), (client) =>
            Effect.promise(async () => {
              try {
                const ids = async (table: string) =>
                  (await client.query<{ id: string }>(`SELECT id::text FROM ${table}`)).rows.map((r) => r.id)
                return {
                  concerts: await ids("concerts"),
                  tickets: await ids("tickets"),
                  reservations: await ids("reservations"),
                  registrations: await ids("registrations")
                }
              } finally {
                await client.end()
              }
            }))
        const [inA, inB] = [yield* rowsIn(a.id), yield* rowsIn(b.id)]
        expect(inA.concerts.sort()).toEqual([ha.concert, ha.drawConcert].sort())
        expect(inB.concerts.sort()).toEqual([hb.concert, hb.drawConcert].sort())
        expect(inA.tickets).toEqual([ha.ticket])
        expect(inB.tickets).toEqual([hb.ticket])
        expect(inA.reservations).toEqual([ha.reservation])
        expect(inB.reservations).toEqual([hb.reservation])
        expect(inA.registrations).toEqual([ha.registration])
        expect(inB.registrations).toEqual([hb.registration])
        const inMain = yield* sql<{ id: string }>`
          SELECT id::text FROM concerts UNION ALL SELECT id::text FROM tickets UNION ALL SELECT id::text FROM reservations`
        for (const id of [ha.concert, hb.concert, ha.ticket, hb.ticket, ha.reservation, hb.reservation]) {
          expect(inMain.map((r) => r.id)).not.toContain(id)
        }
        // The directory says whose each concert is.
        const directory = yield* sql<{ concert_id: string; organiser: number }>`
          SELECT concert_id::text, organiser FROM organiser_concerts ORDER BY organiser, concert_id`
        expect(directory.filter((d) => d.organiser === databases[0]!.number).map((d) => d.concert_id).sort())
          .toEqual([ha.concert, ha.drawConcert].sort())

        // The owner's key does change its own.
        const renamed = yield* raw("PUT", `/api/v1/concerts/${ha.concert}`, body({ name: "A, renamed" }), bearer(ha.key))
        expect(renamed.status).toBe(200)
        expect((json(renamed) as { name: string }).name).toBe("A, renamed")
        // And the print and the seating plan of an organiser's concert are drawn in its database.
        expect((yield* raw("POST", `/api/v1/tickets/${ha.ticket}/print`)).status).toBe(202)
      }))

    it.effect("the operator lists organisers; a key is replaced by the operator or the organiser itself, and the old one stops working", () =>
      Effect.gen(function*() {
        const organiser = yield* createOrganiser("Leaky Promotions")
        const other = yield* createOrganiser("Bystander")
        const listed = yield* raw("GET", "/api/v1/organisers", undefined, admin)
        expect(listed.status).toBe(200)
        const all = json(listed) as Array<{ id: string; name: string; created_at: string }>
        expect(all.map((o) => o.name)).toEqual(expect.arrayContaining(["Leaky Promotions", "Bystander"]))
        expect(all.find((o) => o.id === organiser.id)!.created_at).toMatch(/^\d{4}-\d{2}-\d{2}T/)
        expect(JSON.stringify(all)).not.toContain("tko_")
        expect((yield* raw("GET", "/api/v1/organisers")).status).toBe(401)
        expect((yield* raw("GET", "/api/v1/organisers", undefined, bearer(organiser.api_key))).status).toBe(401)

        const concert = json(yield* raw("POST", "/api/v1/concerts", body({ name: "Leaky", venue: "Hall", date: "2027-03-03", capacity: 5, status: "ACTIVE" }), bearer(organiser.api_key))) as { id: string }
        // Another organiser cannot replace it (and learns nothing: as for an organiser that does not exist).
        const byOther = yield* raw("POST", `/api/v1/organisers/${organiser.id}/key`, undefined, bearer(other.api_key))
        expect(byOther.status).toBe(404)
        expect(json(byOther)).toEqual({ error: `organiser ${organiser.id} does not exist` })
        expect((yield* raw("POST", `/api/v1/organisers/${organiser.id}/key`)).status).toBe(401)
        expect((yield* raw("POST", `/api/v1/organisers/${unknownLike(organiser.id)}/key`, undefined, admin)).status).toBe(404)
        expect((yield* raw("POST", "/api/v1/organisers/not-an-id/key", undefined, admin)).status).toBe(404)

        // The organiser replaces its own key; then the operator replaces that one.
        const own = yield* raw("POST", `/api/v1/organisers/${organiser.id}/key`, undefined, bearer(organiser.api_key))
        expect(own.status).toBe(200)
        const second = json(own) as Organiser
        expect(second).toMatchObject({ id: organiser.id, name: "Leaky Promotions" })
        expect(second.api_key).not.toBe(organiser.api_key)
        expect((yield* raw("GET", `/api/v1/tickets?concert_id=${concert.id}`, undefined, bearer(organiser.api_key))).status).toBe(401)
        expect((yield* raw("GET", `/api/v1/tickets?concert_id=${concert.id}`, undefined, bearer(second.api_key))).status).toBe(200)
        const third = json(yield* raw("POST", `/api/v1/organisers/${organiser.id}/key`, undefined, admin)) as Organiser
        expect((yield* raw("GET", `/api/v1/concerts/${concert.id}`, undefined, bearer(second.api_key))).status).toBe(401)
        expect((yield* raw("GET", `/api/v1/concerts/${concert.id}`, undefined, bearer(third.api_key))).status).toBe(200)
        // The other organiser's key is untouched.
        expect((yield* raw("GET", "/api/v1/concerts", undefined, bearer(other.api_key))).status).toBe(200)
      }))

    it.effect("/metrics and /dashboard show every organiser's figures: with an ADMIN_TOKEN, to the operator alone", () =>
      Effect.gen(function*() {
        const organiser = yield* createOrganiser("Curious")
        const basic = (password: string) => ({ authorization: `Basic ${Buffer.from(`ops:${password}`).toString("base64")}` })
        for (const path of ["/metrics", "/dashboard", "/dashboard/state"]) {
          const anonymous = yield* raw("GET", path)
          expect(anonymous.status, path).toBe(401)
          expect(anonymous.headers["www-authenticate"], path).toMatch(/^Basic realm=/)
          expect((yield* raw("GET", path, undefined, bearer(organiser.api_key))).status, path).toBe(401)
          expect((yield* raw("GET", path, undefined, basic("wrong"))).status, path).toBe(401)
          expect((yield* raw("GET", path, undefined, admin)).status, path).toBe(200)
          expect((yield* raw("GET", path, undefined, basic(adminToken))).status, path).toBe(200)
        }
        const metrics = yield* raw("GET", "/metrics", undefined, admin)
        expect(metrics.body).toMatch(/^ticketoverflow_organiser_db_connections_max 32$/m)
      }))

    it.effect("without a key, the default organiser works as it always did, in the main database", () =>
      Effect.gen(function*() {
        const h = yield* holdings(undefined, "Default's concert")
        expect(h.concert).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4/)
        const sql = yield* SqlClient.SqlClient
        expect(yield* sql`SELECT 1 FROM tickets WHERE id = ${h.ticket}`).toHaveLength(1)
        // The admin token acts as the default organiser's owner; an organiser's key does not.
        expect((yield* raw("GET", `/api/v1/tickets?concert_id=${h.concert}`, undefined, admin)).status).toBe(200)
        const other = yield* createOrganiser("Someone else")
        expect((yield* raw("GET", `/api/v1/tickets?concert_id=${h.concert}`, undefined, bearer(other.api_key))).status).toBe(404)
        expect((yield* raw("GET", `/api/v1/tickets/${h.ticket}`, undefined, bearer(other.api_key))).status).toBe(404)
      }))
  }
)

layer(TestAppWith({ ADMIN_TOKEN: adminToken, OPEN_DEFAULT_ORGANISER: "false" }), { excludeTestServices: true, timeout: "60 seconds" })(
  "a closed default organiser",
  (it) => {
    it.effect("OPEN_DEFAULT_ORGANISER=false: the default organiser's writes need the ADMIN_TOKEN; buyers still buy", () =>
      Effect.gen(function*() {
        const concert = body({ name: "Closed", venue: "Hall", date: "2027-03-03", capacity: 5, status: "ACTIVE" })
        const refused = yield* raw("POST", "/api/v1/concerts", concert)
        expect(refused.status).toBe(401)
        expect(refused.headers["www-authenticate"]).toBe("Bearer")
        expect(json(refused)).toEqual({ error: "this needs the organiser's API key (the default organiser's: the ADMIN_TOKEN)" })
        const created = yield* raw("POST", "/api/v1/concerts", concert, admin)
        expect(created.status).toBe(201)
        const id = (json(created) as { id: string }).id
        expect((yield* raw("PUT", `/api/v1/concerts/${id}`, body({ name: "x" }))).status).toBe(401)
        expect((yield* raw("PUT", `/api/v1/concerts/${id}/sale`, body({ max_per_reservation: 2 }))).status).toBe(401)
        expect((yield* raw("PUT", `/api/v1/concerts/${id}`, body({ name: "x" }), admin)).status).toBe(200)
        expect((yield* raw("POST", "/api/v1/tickets", body({ concert_id: id, user_id: user(1) }))).status).toBe(201)
        expect((yield* raw("GET", `/api/v1/concerts/${id}`)).status).toBe(200)
        // What lists buyers' tickets, holds and invoices is the owner's too, closed as its writes are.
        for (const list of ["/api/v1/tickets", "/api/v1/reservations", "/api/v1/invoices", `/api/v1/concerts/${id}/registrations`]) {
          expect((yield* raw("GET", list)).status, list).toBe(401)
          expect((yield* raw("GET", list, undefined, admin)).status, list).toBe(200)
        }
        // The concerts on sale stay public.
        expect((yield* raw("GET", "/api/v1/concerts")).status).toBe(200)
      }))
  }
)

layer(TestAppWith({}), { excludeTestServices: true, timeout: "60 seconds" })("without an ADMIN_TOKEN", (it) => {
  it.effect("POST /organisers does not exist, and any bearer token is a wrong key", () =>
    Effect.gen(function*() {
      const response = yield* raw("POST", "/api/v1/organisers", body({ name: "X" }), bearer("anything"))
      expect(response.status).toBe(401)
      const without = yield* raw("POST", "/api/v1/organisers", body({ name: "X" }))
      expect(without.status).toBe(404)
      expect(json(without)).toEqual({ error: "no such endpoint: POST /api/v1/organisers" })
      expect((yield* raw("GET", "/api/v1/organisers")).status).toBe(404)
    }))
})
