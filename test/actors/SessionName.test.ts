import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { createHash } from "node:crypto"
import Pg from "pg"
import { runnerSessionName, runnerSessionNameSql } from "../../src/Settings.js"
import { freshDatabaseUrl } from "../fixtures/Database.js"

// The runners end the database sessions of a runner that stopped answering, found by this
// name; the query that finds them names runners the same way, in SQL (`FencingLive`).
const long = { host: `runner-1.${"a".repeat(40)}.example.com`, port: 7431 }
const addresses = [{ host: "10.0.0.5", port: 7431 }, long, { ...long, port: 7432 }, { host: "båt.example", port: 7431 }]

it("a runner's session names its address when PostgreSQL keeps it whole, and its MD5 otherwise", () => {
  expect(runnerSessionName({ host: "10.0.0.5", port: 7431 })).toBe("ticketoverflow runner 10.0.0.5:7431")
  // 63 bytes of printable ASCII is what application_name keeps: a longer address, or one
  // PostgreSQL would rewrite, could otherwise share a name with another runner's.
  const md5 = createHash("md5").update(`${long.host}:7431`).digest("hex")
  expect(runnerSessionName(long)).toBe(`ticketoverflow runner md5:${md5}`)
  expect(runnerSessionName({ ...long, port: 7432 })).not.toBe(runnerSessionName(long))
  expect(runnerSessionName({ host: "båt.example", port: 7431 })).toMatch(/^ticketoverflow runner md5:[0-9a-f]{32}$/)
  for (const address of addresses) expect(Buffer.byteLength(runnerSessionName(address))).toBeLessThanOrEqual(63)
})

it.scopedLive("the name in SQL is the same, and it is the name PostgreSQL shows for a session that sets it", () =>
  Effect.gen(function*() {
    const url = yield* freshDatabaseUrl
    for (const address of addresses) {
      const name = runnerSessionName(address)
      const seen = yield* Effect.promise(async () => {
        const client = new Pg.Client({ connectionString: url, application_name: name })
        await client.connect()
        try {
          const { rows } = await client.query<{ computed: string; shown: string }>(
            `SELECT ${runnerSessionNameSql("$1::text")} AS computed,
               (SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()) AS shown`,
            [`${address.host}:${address.port}`]
          )
          return rows[0]!
        } finally {
          await client.end()
        }
      })
      expect(seen).toEqual({ computed: name, shown: name })
    }
  }))
