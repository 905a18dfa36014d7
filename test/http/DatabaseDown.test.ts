import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { startEmbeddedPostgres } from "../../src/sql/EmbeddedPostgres.js"
import { rawRequest } from "../fixtures/RawHttp.js"
import { startService } from "../fixtures/Service.js"

/** A PostgreSQL of this test's own, so it can be stopped under the running service. */
const ownDatabase = Effect.acquireRelease(
  Effect.promise(async () => {
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), "ticketoverflow-down-"))
    return { dataDir, server: await startEmbeddedPostgres({ dataDir, settings: { fsync: "off" } }) }
  }),
  ({ dataDir, server }) => Effect.promise(() => server.stop().then(() => fs.rm(dataDir, { recursive: true, force: true })))
)


it.scopedLive("while the database is down every endpoint answers 503 with Retry-After, never 500, and recovers", () =>
  Effect.gen(function*() {
    const db = yield* ownDatabase
    const service = yield* Effect.acquireRelease(
      Effect.promise(() => startService({ DATABASE_URL: db.server.url, DATABASE_POOL_SIZE: "4" })),
      (s) => Effect.promise(() => (s.process.kill("SIGKILL"), s.exited))
    )
    const call = (method: string, url: string, body?: string) =>
      Effect.promise(() => rawRequest(service.port, method, url, body))
    const created = yield* call("POST", "/api/v1/concerts", JSON.stringify({ name: "N", venue: "V", date: "2027-01-01", capacity: 5, status: "ACTIVE" }))
    const concertId = (JSON.parse(created.body) as { id: string }).id
    const purchase = JSON.stringify({ concert_id: concertId, user_id: "00000000-0000-0000-0000-000000000001" })
    expect((yield* call("POST", "/api/v1/tickets", purchase)).status).toBe(201)

    yield* Effect.promise(() => db.server.stop())
    const requests: ReadonlyArray<readonly [string, string, string?]> = [
      ["GET", "/api/v1/concerts/health"],
      ["GET", "/api/v1/tickets/health"],
      ["GET", "/api/v1/concerts"],
      ["GET", `/api/v1/concerts/${concertId}`],
      ["GET", `/api/v1/tickets?concert_id=${concertId}`],
      ["POST", "/api/v1/concerts", created.body.replace(/"id":"[^"]+",/, "").replace(/"status":"[A-Z_]+"/, "\"status\":\"ACTIVE\"")],
      ["PUT", `/api/v1/concerts/${concertId}`, JSON.stringify({ name: "M" })],
      ["POST", "/api/v1/tickets", purchase]
    ]
    for (const [method, url, body] of requests) {
      const response = yield* call(method, url, body)
      expect({ method, url, status: response.status }).toEqual({ method, url, status: 503 })
      expect(response.headers["retry-after"]).toBeDefined()
      expect(typeof (JSON.parse(response.body) as { error: unknown }).error).toBe("string")
    }

    // Back on the same port with the same data: the service reconnects by itself.
    const again = yield* Effect.acquireRelease(
      Effect.promise(() => startEmbeddedPostgres({ dataDir: db.dataDir, port: db.server.port, settings: { fsync: "off" } })),
      (server) => Effect.promise(() => server.stop())
    )
    expect(again.port).toBe(db.server.port)
    let healthy = 0
    for (let waited = 0; waited < 20_000 && healthy !== 200; waited += 250) {
      healthy = (yield* call("GET", "/api/v1/tickets/health")).status
      if (healthy !== 200) yield* Effect.sleep("250 millis")
    }
    expect(healthy).toBe(200)
    expect((yield* call("POST", "/api/v1/tickets", purchase)).status).toBe(201)
    const tickets = JSON.parse((yield* call("GET", `/api/v1/tickets?concert_id=${concertId}`)).body) as Array<unknown>
    expect(tickets).toHaveLength(2)
  }), 120_000)
