import { expect, it, layer } from "@effect/vitest"
import { Cause, Effect, Exit, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { json, raw, TestAppWith } from "../fixtures/Http.js"

// Names with quotes and markup, repeated emails, ids that are not UUIDs: served as given.
const users = [
  { id: "u-1", name: "Dwayne \"The Rock\" Johnson", email: "same@example.org" },
  { id: "00000000-0000-0000-0000-000000000002", name: "<b>Ada</b> & Co", email: "same@example.org" },
  { id: "ünï", name: "Zoë", email: "zoe@example.org" }
]
const usersFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "users-")), "users.json")
fs.writeFileSync(usersFile, JSON.stringify(users, null, 4))

const configured = TestAppWith

layer(configured({ USERS_FILE: usersFile, PUBLIC_BASE_URL: "https://tickets.example.com/api/v1/", TICKETS_PAGE_SIZE: "2" }), {
  excludeTestServices: true,
  timeout: "60 seconds"
})("configuration", (it) => {
  it.effect("USERS_FILE replaces the users list, served exactly; purchases accept only those users", () =>
    Effect.gen(function*() {
      const list = yield* raw("GET", "/api/v1/users")
      expect(json(list)).toEqual(users)
      expect(json(yield* raw("GET", "/api/v1/users/u-1"))).toEqual(users[0])
      expect((yield* raw("GET", "/api/v1/users/00000000-0000-0000-0000-000000000001")).status).toBe(404)
    }))

  it.effect("ticket lists are streamed page by page: every ticket once, in order, equal to GET", () =>
    Effect.gen(function*() {
      const concert = json(yield* raw("POST", "/api/v1/concerts", JSON.stringify({
        name: "Paged",
        venue: "V",
        date: "2027-01-01",
        capacity: 10,
        status: "ACTIVE"
      }))) as { id: string }
      const bought: Array<unknown> = []
      for (let i = 0; i < 5; i++) {
        bought.push(json(yield* raw("POST", "/api/v1/tickets", JSON.stringify({ concert_id: concert.id, user_id: "ünï" }))))
      }
      const byConcert = yield* raw("GET", `/api/v1/tickets?concert_id=${concert.id}`)
      expect(byConcert.headers["content-type"]).toBe("application/json")
      expect(json(byConcert)).toEqual(bought)
      expect(json(yield* raw("GET", "/api/v1/tickets?user_id=%C3%BCn%C3%AF"))).toEqual(bought)
      const all = json(yield* raw("GET", "/api/v1/tickets")) as Array<{ id: string }>
      expect(new Set(all.map((t) => t.id)).size).toBe(all.length)
      for (const ticket of bought) expect(all).toContainEqual(ticket)
    }))

  it.effect("the concert list is streamed page by page: every concert once, in creation order, equal to GET", () =>
    Effect.gen(function*() {
      const created: Array<unknown> = []
      for (let i = 0; i < 5; i++) {
        created.push(json(yield* raw("POST", "/api/v1/concerts", JSON.stringify({
          name: `Paged "${i}" \\ ü`,
          venue: "V",
          date: "2027-01-01",
          capacity: 10,
          status: "ACTIVE"
        }))))
      }
      const list = yield* raw("GET", "/api/v1/concerts")
      expect(list.headers["content-type"]).toBe("application/json")
      const all = json(list) as Array<unknown>
      expect(all.slice(-5)).toEqual(created)
      expect(new Set(all.map((c) => (c as { id: string }).id)).size).toBe(all.length)
      for (const concert of created) {
        expect(json(yield* raw("GET", `/api/v1/concerts/${(concert as { id: string }).id}`))).toEqual(concert)
      }
    }))

  it.effect("PUBLIC_BASE_URL overrides the links in tickets", () =>
    Effect.gen(function*() {
      const concert = json(yield* raw("POST", "/api/v1/concerts", JSON.stringify({
        name: "N",
        venue: "V",
        date: "2027-01-01",
        capacity: 2,
        status: "ACTIVE"
      }))) as { id: string }
      const bought = yield* raw("POST", "/api/v1/tickets", JSON.stringify({ concert_id: concert.id, user_id: "u-1" }))
      expect(bought.status).toBe(201)
      expect(json(bought)).toMatchObject({
        concert: { id: concert.id, url: `https://tickets.example.com/api/v1/concerts/${concert.id}` },
        user: { id: "u-1", url: "https://tickets.example.com/api/v1/users/u-1" }
      })
      const refused = yield* raw("POST", "/api/v1/tickets", JSON.stringify({ concert_id: concert.id, user_id: "00000000-0000-0000-0000-000000000001" }))
      expect(refused.status).toBe(400)
    }))
})

// The course's published list, when this checkout has it beside it (CI does): served exactly.
const published = path.resolve(import.meta.dirname, "../../../shared/data/ticketoverflow-users.json")
if (fs.existsSync(published)) {
  layer(configured({ USERS_FILE: published }), { excludeTestServices: true, timeout: "60 seconds" })("published users", (it) => {
    it.effect("GET /users returns exactly the published list", () =>
      Effect.gen(function*() {
        const list = yield* raw("GET", "/api/v1/users")
        expect(json(list)).toEqual(JSON.parse(fs.readFileSync(published, "utf8")))
      }))
  })
}

it.live("a count setting of zero or less, or a share outside (0, 1], stops the start, naming the setting", () =>
  Effect.gen(function*() {
    for (
      const [name, value] of [
        ["PURCHASE_BATCH_MAX", "0"],
        ["TICKETS_PAGE_SIZE", "-5"],
        ["MAX_BODY_BYTES", "0"],
        ["SEATING_REDRAW_SHARE", "0"],
        ["SEATING_REDRAW_SHARE", "1.5"],
        ["SEATING_REDRAW_SHARE", "a fifth"]
      ]
    ) {
      const exit = yield* Effect.exit(Effect.scoped(Layer.build(configured({ [name!]: value! }))))
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit)) expect(Cause.pretty(exit.cause)).toContain(`${name}`)
    }
  }), 60_000)
