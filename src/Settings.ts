/**
 * Settings shared by several modules. A count that is zero or negative would hang or spin
 * something (a batch of nothing, a pool of no connections): the service refuses to start
 * instead, naming the setting.
 */
import { createHash } from "node:crypto"
import { Config, Duration } from "effect"

/**
 * The Node settings the service runs with wherever it is started (`npm start` spells them out
 * too): a 64 MB semi-space, since purchases allocate fast and fewer scavenges pay, and an old
 * generation collected once it has grown 30 % past what survived, a bound that follows the live
 * heap. (The render thread gets V8's default young generation: `src/workers/Renderer.ts`.)
 */
export const serviceNodeArgs: ReadonlyArray<string> = ["--max-semi-space-size=64", "--heap-growing-percent=30"]

/**
 * The environment the service's processes start with (`npm start` sets it too), where not set
 * already: glibc's `malloc` with a fixed size (256 KiB) from which a block is mapped on its own,
 * and given back to the system when freed. Left to itself, glibc raises that size to the
 * largest block freed so far (a 7 MB seating plan), and the large blocks after it come from the
 * heap, whose freed memory the process keeps (`docs/BENCHMARKS.md`, the Q8 tour).
 */
export const serviceEnv: Readonly<Record<string, string>> = { MALLOC_MMAP_THRESHOLD_: "262144" }

/** How this process takes part in the cluster (see `src/actors/Cluster.ts`). */
export const clusterMode = Config.literal("single", "runner", "client")("CLUSTER_MODE").pipe(Config.withDefault("single"))
export type ClusterMode = Config.Config.Success<typeof clusterMode>

/** Where a runner is reachable by the others (`CLUSTER_MODE=runner`). */
export const runnerAddress = Config.all({
  host: Config.string("RUNNER_HOST").pipe(Config.withDefault("localhost")),
  // Below Linux's ephemeral range (32768-60999): an outgoing connection can never hold it.
  port: Config.port("RUNNER_PORT").pipe(Config.withDefault(7431))
})

/**
 * The name this process's database sessions carry (`application_name`). A runner's names its
 * address (`host:port`, as the cluster keys it), so that the other runners can tell its
 * sessions apart: they end them when it stops answering (`FencingLive` in `actors/Cluster.ts`).
 * PostgreSQL keeps 63 bytes of printable ASCII: a longer address, or one it would rewrite, is
 * named by its MD5 instead, so that two runners never share a name.
 */
export const runnerSessionName = (address: string) => {
  const name = `ticketoverflow runner ${address}`
  return /^[ -~]{1,63}$/.test(name) ? name : `ticketoverflow runner md5:${createHash("md5").update(address).digest("hex")}`
}

export const databaseSessionName = Config.all({ mode: clusterMode, address: runnerAddress }).pipe(
  Config.map(({ address, mode }) => (mode === "runner" ? runnerSessionName(`${address.host}:${address.port}`) : "ticketoverflow"))
)

/**
 * A database URL without an `application_name` of its own, which would take the place of
 * `databaseSessionName`: a runner's sessions must carry its name, by which the others end them
 * if it stops answering.
 */
export const withoutSessionName = (url: string) => {
  try {
    const parsed = new URL(url)
    if (!parsed.searchParams.has("application_name")) return url
    parsed.searchParams.delete("application_name")
    return parsed.toString()
  } catch {
    return url
  }
}

export const positiveInteger = (name: string, fallback: number): Config.Config<number> =>
  Config.integer(name).pipe(
    Config.validate({ message: "must be a positive integer", validation: (n) => n >= 1 }),
    Config.withDefault(fallback)
  )

/**
 * The largest request body read, in bytes (`MAX_BODY_BYTES`, default 64 KiB): the server, the
 * API and the purchase route refuse or pass on anything larger (413).
 */
export const maxBodyBytes: Config.Config<number> = positiveInteger("MAX_BODY_BYTES", 64 * 1024)

/**
 * How long a buyer waits for an order (a purchase, a hold, a registration) to be saved before
 * a 503, in milliseconds: after it, the order is never saved (`PURCHASE_TIMEOUT`, default 10 s).
 */
export const purchaseTimeoutMillis: Config.Config<number> = Config.duration("PURCHASE_TIMEOUT").pipe(
  Config.validate({ message: "must be a positive duration", validation: (d) => Duration.toMillis(d) > 0 }),
  Config.withDefault(Duration.seconds(10)),
  Config.map(Duration.toMillis)
)

/**
 * How long a request whose repeat is harmless may take before a 503 (`REQUEST_TIMEOUT`, default
 * 15 s): a database that stops answering, without refusing connections, must not leave clients
 * of reads and idempotent writes hanging (see `ErrorResponses`).
 */
export const requestTimeoutMillis: Config.Config<number> = Config.duration("REQUEST_TIMEOUT").pipe(
  Config.validate({ message: "must be a positive duration", validation: (d) => Duration.toMillis(d) > 0 }),
  Config.withDefault(Duration.seconds(15)),
  Config.map(Duration.toMillis)
)
