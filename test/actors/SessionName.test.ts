import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { createHash } from "node:crypto"
import { runnerSessionName } from "../../src/Settings.js"
import { freshDatabaseUrl, withClient } from "../fixtures/Database.js"

// The runners end the database sessions of a runner that stopped answering, found by this
// name in pg_stat_activity (`FencingLive`).
const long = `runner-1.${"a".repeat(40)}.example.com`
const addresses = ["10.0.0.5:7431", `${long}:7431`, `${long}:7432`, "båt.example:7431"]

it("a runner's session names its address when PostgreSQL keeps it whole, and its MD5 otherwise", () => {
  expect(runnerSessionName("10.0.0.5:7431")).toBe("ticketoverflow runner 10.0.0.5:7431")
  // 63 bytes of printable ASCII is what application_name keeps: a longer address, or one
  // PostgreSQL would rewrite, could otherwise share a name with another runner's.
  const md5 = createHash("md5").update(`${long}:7431`).digest("hex")
  expect(runnerSessionName(`${long}:7431`)).toBe(`ticketoverflow runner md5:${md5}`)
  expect(runnerSessionName(`${long}:7432`)).not.toBe(runnerSessionName(`${long}:7431`))
  expect(runnerSessionName("båt.example:7431")).toMatch(/^ticketoverflow runner md5:[0-9a-f]{32}$/)
  for (const address of addresses) expect(Buffer.byteLength(runnerSessionName(address))).toBeLessThanOrEqual(63)
})

it.scopedLive("PostgreSQL shows a session the very name it was given", () =>
  Effect.gen(function*() {
    const url = yield* freshDatabaseUrl
    for (const address of addresses) {
      const name = runnerSessionName(address)
      const shown = yield* withClient({ connectionString: url, application_name: name }, async (client) => {
        const { rows } = await client.query<{ shown: string }>(
          "SELECT application_name AS shown FROM pg_stat_activity WHERE pid = pg_backend_pid()"
        )
        return rows[0]!.shown
      })
      expect(shown).toBe(name)
    }
  }))
