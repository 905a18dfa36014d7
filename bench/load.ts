/**
 * The load generator, run in its own process: sends purchases over keep-alive connections
 * and prints one JSON line with the status histogram and latencies. Arguments (JSON in argv[2]):
 * { port, concerts: string[], requests, connections, burst }. With `burst`, every request is
 * issued at once (queued on the connections); otherwise `connections` requests stay in flight.
 */
import * as http from "node:http"

interface Options {
  readonly port: number
  readonly concerts: ReadonlyArray<string>
  readonly requests: number
  readonly connections: number
  readonly burst: boolean
}

const options = JSON.parse(process.argv[2] ?? "{}") as Options
const agent = new http.Agent({ keepAlive: true, maxSockets: options.connections })

const user = (i: number) => `00000000-0000-0000-0000-${String((i % 5000) + 1).padStart(12, "0")}`

interface Sample {
  readonly status: number
  readonly ms: number
  /** Why no answer came (status 0): the socket error's code. */
  readonly error?: string
}

const send = (i: number): Promise<Sample> =>
  new Promise((resolve) => {
    const body = JSON.stringify({ concert_id: options.concerts[i % options.concerts.length], user_id: user(i) })
    const started = performance.now()
    const req = http.request({
      host: "127.0.0.1",
      port: options.port,
      method: "POST",
      path: "/api/v1/tickets",
      agent,
      headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) }
    }, (res) => {
      res.resume()
      res.on("end", () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - started }))
    })
    req.on("error", (error: NodeJS.ErrnoException) =>
      resolve({ status: 0, ms: performance.now() - started, error: error.code ?? error.message }))
    req.end(body)
  })

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!

const main = async () => {
  const samples: Array<Sample> = []
  const started = performance.now()
  if (options.burst) {
    samples.push(...await Promise.all(Array.from({ length: options.requests }, (_, i) => send(i))))
  } else {
    let next = 0
    await Promise.all(Array.from({ length: options.connections }, async () => {
      while (next < options.requests) samples.push(await send(next++))
    }))
  }
  const wallMs = performance.now() - started
  agent.destroy()
  const histogram: Record<string, number> = {}
  const errors: Record<string, number> = {}
  for (const s of samples) {
    histogram[s.status] = (histogram[s.status] ?? 0) + 1
    if (s.error !== undefined) errors[s.error] = (errors[s.error] ?? 0) + 1
  }
  const all = samples.map((s) => s.ms).sort((a, b) => a - b)
  const ok = samples.filter((s) => s.status === 201).map((s) => s.ms).sort((a, b) => a - b)
  process.stdout.write(JSON.stringify({
    wallMs,
    perSecond: samples.length / (wallMs / 1000),
    histogram,
    p50: percentile(all, 50),
    p90: percentile(all, 90),
    p99: percentile(all, 99),
    max: all.at(-1) ?? 0,
    okP50: percentile(ok, 50),
    okP99: percentile(ok, 99),
    errors
  }) + "\n")
}

main()
