/**
 * One hostile client, run in its own process by `npm run bench -- hostile` until it is sent
 * SIGTERM (or its work is done). Arguments (JSON in argv[2]): { kind, port, concertId? }.
 *
 * pipeline: every second, one connection writes 2,000 pipelined `GET /concerts` and closes
 *   without reading anything.
 * lists: four clients loop over `GET /tickets` (every ticket), reading each answer in full.
 * seats: 64 clients loop over an uncompressed 150,000-seat plan; 300 more ask for it and never read.
 * concerts: 2,500 `POST /concerts` of 150,000 seats, as fast as 32 connections go.
 * unknown: purchases for random, well-formed concert ids, 64 at a time.
 * idle: 19,000 connections opened and left idle.
 */
import * as crypto from "node:crypto"
import * as http from "node:http"
import * as net from "node:net"

interface Options {
  readonly kind: "pipeline" | "lists" | "seats" | "concerts" | "unknown" | "idle"
  readonly port: number
  readonly concertId?: string
}

const options = JSON.parse(process.argv[2] ?? "{}") as Options
let running = true
process.on("SIGTERM", () => {
  running = false
  setTimeout(() => process.exit(0), 500).unref()
})

const agent = new http.Agent({ keepAlive: true, maxSockets: 512 })

const request = (method: string, path: string, body?: string, headers: Record<string, string> = {}) =>
  new Promise<number>((resolve) => {
    const req = http.request({
      host: "127.0.0.1",
      port: options.port,
      method,
      path,
      agent,
      headers: body === undefined
        ? headers
        : { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)), ...headers }
    }, (res) => {
      res.resume()
      res.on("end", () => resolve(res.statusCode ?? 0))
      res.on("error", () => resolve(0))
    })
    req.on("error", () => resolve(0))
    req.end(body)
  })

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const loop = async (clients: number, work: () => Promise<unknown>) => {
  await Promise.all(Array.from({ length: clients }, async () => {
    while (running) await work()
  }))
}

const connect = () =>
  new Promise<net.Socket | undefined>((resolve) => {
    const socket = net.connect(options.port, "127.0.0.1")
    socket.once("connect", () => resolve(socket))
    socket.once("error", () => resolve(undefined))
  })

const attacks: Record<Options["kind"], () => Promise<unknown>> = {
  pipeline: async () => {
    while (running) {
      const socket = await connect()
      socket?.on("error", () => undefined)
      socket?.write("GET /api/v1/concerts HTTP/1.1\r\nHost: localhost\r\n\r\n".repeat(2000), () => socket.destroy())
      await sleep(1000)
    }
  },
  lists: () => loop(4, () => request("GET", "/api/v1/tickets")),
  seats: async () => {
    const path = `/api/v1/concerts/${options.concertId}/seats`
    const stalled: Array<net.Socket> = []
    for (let i = 0; i < 300; i++) {
      const socket = await connect()
      if (socket === undefined) continue
      socket.on("error", () => undefined)
      socket.pause()
      socket.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\n\r\n`)
      stalled.push(socket)
    }
    await loop(64, () => request("GET", path))
    stalled.forEach((s) => s.destroy())
  },
  concerts: async () => {
    let sent = 0
    await Promise.all(Array.from({ length: 32 }, async () => {
      while (running && sent < 2500) {
        sent += 1
        await request("POST", "/api/v1/concerts", JSON.stringify({
          name: `Flood ${sent}`,
          venue: "Anywhere",
          date: "2027-01-01",
          capacity: 150_000,
          status: "ACTIVE"
        }))
      }
    }))
  },
  unknown: () =>
    loop(64, () =>
      request("POST", "/api/v1/tickets", JSON.stringify({
        concert_id: crypto.randomUUID(),
        user_id: "00000000-0000-0000-0000-000000000001"
      }))),
  idle: async () => {
    const sockets: Array<net.Socket> = []
    for (let i = 0; i < 19_000 && running; i++) {
      const socket = await connect()
      if (socket === undefined) break
      socket.on("error", () => undefined)
      sockets.push(socket)
    }
    while (running) await sleep(200)
    sockets.forEach((s) => s.destroy())
  }
}

attacks[options.kind]().then(() => process.exit(0))
