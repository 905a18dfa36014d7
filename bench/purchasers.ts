/**
 * Virtual users, as the course's k6 tests shaped them, in their own process. A purchaser
 * iteration: GET the user, POST a ticket (then POST its print when `print`), GET the ticket
 * back, think. Staff poll seating plans. Runs until `iterations` purchases were attempted or
 * `durationMs` passed; writes progress lines (`{"progress":…}`) and one result line as JSON.
 */
import * as http from "node:http"

export interface PurchasersOptions {
  readonly host: string
  readonly port: number
  readonly concerts: ReadonlyArray<string>
  readonly vus: number
  readonly iterations: number
  readonly durationMs: number
  readonly thinkMs: number
  readonly print: boolean
  /** Only POST the ticket: a bare buyer, as in a tour's sale where nothing else is asked. */
  readonly purchaseOnly?: boolean
  readonly staff: number
  readonly staffPollMs: number
}

export interface OpStats {
  readonly count: number
  readonly statuses: Record<string, number>
  readonly p50: number
  readonly p90: number
  readonly p99: number
  readonly max: number
}

export interface PurchasersResult {
  readonly wallMs: number
  readonly attempts: number
  readonly ops: Record<string, OpStats>
  readonly okPurchaseP99: number
  readonly perSecond: ReadonlyArray<number>
}

const options = JSON.parse(process.argv[2] ?? "{}") as PurchasersOptions
const agent = new http.Agent({ keepAlive: true, maxSockets: options.vus + options.staff + 8 })
/** Latencies of one operation in a growing typed array: a full-scale Q8 records ~8 million. */
class Series {
  readonly statuses: Record<string, number> = {}
  ms = new Float32Array(1024)
  count = 0
  add(status: number, ms: number) {
    this.statuses[status] = (this.statuses[status] ?? 0) + 1
    if (this.count === this.ms.length) {
      const grown = new Float32Array(this.ms.length * 2)
      grown.set(this.ms)
      this.ms = grown
    }
    this.ms[this.count++] = ms
  }
  sorted() {
    return this.ms.slice(0, this.count).sort()
  }
}
const samples = new Map<string, Series>()
const record = (op: string, status: number, ms: number) => {
  let series = samples.get(op)
  if (series === undefined) samples.set(op, series = new Series())
  series.add(status, ms)
}
const okPurchases = new Series()
const perSecond: Array<number> = []
const started = performance.now()

const request = (op: string, method: string, path: string, body?: string) =>
  new Promise<{ status: number; body: string }>((resolve) => {
    const t = performance.now()
    const req = http.request({
      host: options.host,
      port: options.port,
      method,
      path,
      agent,
      headers: body === undefined ? {} : { "content-type": "application/json", "content-length": Buffer.byteLength(body) }
    }, (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (c: Buffer) => chunks.push(c))
      res.on("end", () => {
        const status = res.statusCode ?? 0
        record(op, status, performance.now() - t)
        resolve({ status, body: Buffer.concat(chunks).toString() })
      })
    })
    req.on("error", () => {
      record(op, 0, performance.now() - t)
      resolve({ status: 0, body: "" })
    })
    req.end(body)
  })

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
let attempts = 0
const done = () => attempts >= options.iterations || performance.now() - started >= options.durationMs

const purchaser = async (vu: number) => {
  while (!done()) {
    const i = attempts++
    const user = `00000000-0000-0000-0000-${String(((vu * 7919 + i) % 5000) + 1).padStart(12, "0")}`
    if (options.purchaseOnly !== true) await request("GET user", "GET", `/api/v1/users/${user}`)
    const t = performance.now()
    const bought = await request("POST ticket", "POST", "/api/v1/tickets", JSON.stringify({
      concert_id: options.concerts[i % options.concerts.length],
      user_id: user
    }))
    if (bought.status === 201) okPurchases.add(201, performance.now() - t)
    if (bought.status === 201 && options.purchaseOnly !== true) {
      const id = (JSON.parse(bought.body) as { id: string }).id
      if (options.print) await request("POST print", "POST", `/api/v1/tickets/${id}/print`)
      await request("GET ticket", "GET", `/api/v1/tickets/${id}`)
    }
    await sleep(options.thinkMs)
  }
}

const staff = async (s: number) => {
  while (!done()) {
    await request("GET seats", "GET", `/api/v1/concerts/${options.concerts[s % options.concerts.length]}/seats`)
    await sleep(options.staffPollMs)
  }
}

const summary = (series: Series): OpStats => {
  const sorted = series.sorted()
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0
  return { count: series.count, statuses: series.statuses, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: sorted.at(-1) ?? 0 }
}

const main = async () => {
  let lastCount = 0
  const ticker = setInterval(() => {
    const purchases = samples.get("POST ticket")?.count ?? 0
    perSecond.push(purchases - lastCount)
    lastCount = purchases
    process.stdout.write(JSON.stringify({ progress: { attempts, purchases, elapsedMs: performance.now() - started } }) + "\n")
  }, 1000)
  await Promise.all([
    ...Array.from({ length: options.vus }, (_, vu) => purchaser(vu)),
    ...Array.from({ length: options.staff }, (_, s) => staff(s))
  ])
  clearInterval(ticker)
  agent.destroy()
  const sortedOk = okPurchases.sorted()
  const result: PurchasersResult = {
    wallMs: performance.now() - started,
    attempts,
    ops: Object.fromEntries([...samples].map(([op, list]) => [op, summary(list)])),
    okPurchaseP99: sortedOk[Math.floor(0.99 * sortedOk.length)] ?? 0,
    perSecond
  }
  process.stdout.write(JSON.stringify({ result }) + "\n")
}

main()
