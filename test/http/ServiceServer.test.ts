import { describe, expect, it } from "@effect/vitest"
import type * as http from "node:http"
import { Agent, request } from "node:http"
import * as net from "node:net"
import type { AddressInfo } from "node:net"
import { ServiceServer } from "../../src/http/ServiceServer.js"
import { rawRequest } from "../fixtures/RawHttp.js"

const listening = async (server: ServiceServer) => {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return (server.address() as AddressInfo).port
}

/** The Host the handler saw for an HTTP/1.0 request sent without one (it answers with it). */
const hostSeen = (port: number, address: string) =>
  new Promise<string>((resolve, reject) => {
    const socket = net.connect(port, address)
    let bytes = ""
    socket.on("data", (chunk: Buffer) => (bytes += chunk.toString()))
    socket.on("error", reject)
    socket.on("close", () =>
      bytes.startsWith("HTTP/1.1 200 OK\r\n")
        ? resolve(bytes.slice(bytes.indexOf("\r\n\r\n") + 4))
        : reject(new Error(`answered: ${bytes.split("\r\n")[0]}`)))
    socket.write("GET /api/v1/concerts HTTP/1.0\r\n\r\n")
  })

const closed = async (server: ServiceServer) => {
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
}

describe("ServiceServer", () => {
  it("answers 503 with Retry-After until the API's handler is attached, then only the handler answers", async () => {
    const server = new ServiceServer()
    const port = await listening(server)
    try {
      const starting = await rawRequest(port, "GET", "/api/v1/concerts/health")
      expect(starting.status).toBe(503)
      expect(starting.headers["content-type"]).toBe("application/json")
      expect(starting.headers["retry-after"]).toBe("1")
      expect(JSON.parse(starting.body)).toEqual({ error: "the service is starting" })

      server.on("request", (_request: http.IncomingMessage, response: http.ServerResponse) => response.end("ready"))
      const ready = await rawRequest(port, "GET", "/api/v1/concerts/health")
      expect(ready.status).toBe(200)
      expect(ready.body).toBe("ready")
    } finally {
      await closed(server)
    }
  })

  it("draining answers what is in flight, refuses new requests with 503 and Connection: close, then closes", async () => {
    const server = new ServiceServer()
    const port = await listening(server)
    const held: Array<http.ServerResponse> = []
    const handler = (request: http.IncomingMessage, response: http.ServerResponse) =>
      request.url === "/slow" ? held.push(response) : response.end("ok")
    server.on("request", handler)
    const agent = new Agent({ keepAlive: true, maxSockets: 2 })
    const get = (path: string) =>
      new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) =>
        request({ host: "127.0.0.1", port, path, agent }, (response) => {
          let body = ""
          response.on("data", (chunk: Buffer) => (body += chunk.toString()))
          response.on("end", () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }))
        }).on("error", reject).end())
    try {
      // Two open keep-alive connections: one will carry a slow request, the other a new one.
      await Promise.all([get("/warm"), get("/warm")])
      const inFlight = get("/slow")
      while (held.length === 0) await new Promise((resolve) => setTimeout(resolve, 5))
      const drained = server.drain(10_000)

      const refused = await get("/api/v1/concerts")
      expect(refused.status).toBe(503)
      expect(refused.headers.connection).toBe("close")
      expect(refused.headers["retry-after"]).toBe("1")
      expect(JSON.parse(refused.body)).toEqual({ error: "the service is shutting down; retry" })
      // A new connection too, until the listener closes.
      expect((await rawRequest(port, "GET", "/api/v1/concerts")).status).toBe(503)

      // The API detaching its handler while draining changes nothing for clients.
      server.off("request", handler)
      held[0]!.end("done")
      const answered = await inFlight
      expect(answered.body).toBe("done")
      // The answer in flight closes its connection too: the client reconnects elsewhere.
      expect(answered.headers.connection).toBe("close")
      expect(await drained).toBe(0)
      // Then nothing listens: a client is refused before it sends anything.
      await expect(rawRequest(port, "GET", "/api/v1/concerts")).rejects.toMatchObject({ code: "ECONNREFUSED" })
    } finally {
      agent.destroy()
      server.closeAllConnections()
    }
  })

  it("stops waiting for requests that outlast the drain timeout", async () => {
    const server = new ServiceServer()
    const port = await listening(server)
    server.on("request", () => undefined)
    try {
      const pending = rawRequest(port, "GET", "/never").catch(() => undefined)
      while (server.requestsInFlight === 0) await new Promise((resolve) => setTimeout(resolve, 5))
      expect(await server.drain(50)).toBe(1)
      await pending
    } finally {
      server.closeAllConnections()
    }
  })
})

describe("ServiceServer bounds", () => {
  const pipelined = (port: number, count: number) => {
    const socket = net.connect(port, "127.0.0.1")
    socket.write("GET /work HTTP/1.1\r\nHost: localhost\r\n\r\n".repeat(count))
    return socket
  }

  it("runs pipelined requests one at a time and drops those left when the client goes", async () => {
    const server = new ServiceServer()
    const port = await listening(server)
    let started = 0
    server.on("request", (_request: http.IncomingMessage, response: http.ServerResponse) => {
      started += 1
      setTimeout(() => response.end("done"), 50)
    })
    try {
      const socket = pipelined(port, 20)
      await new Promise((resolve) => socket.once("data", resolve))
      socket.destroy()
      await new Promise((resolve) => setTimeout(resolve, 500))
      // The one answered and at most the one started after it; not the 18 others.
      expect(started).toBeLessThanOrEqual(2)
    } finally {
      await closed(server)
    }
  })

  it("closes a connection that pipelines more than it may queue", async () => {
    const server = new ServiceServer({ maxQueuedPerConnection: 4 })
    const port = await listening(server)
    let started = 0
    server.on("request", (_request: http.IncomingMessage, response: http.ServerResponse) => {
      started += 1
      setTimeout(() => response.end("done"), 20)
    })
    try {
      const socket = pipelined(port, 50)
      socket.resume()
      await new Promise((resolve) => socket.once("close", resolve))
      expect(started).toBeLessThanOrEqual(5)
    } finally {
      await closed(server)
    }
  })

  it("what Node's parser refuses is answered with a JSON error too: 431 for huge headers, 400 for what is not HTTP", async () => {
    const server = new ServiceServer()
    const port = await listening(server)
    server.on("request", (_request: http.IncomingMessage, response: http.ServerResponse) => response.end("ok"))
    const exchange = (bytes: string) =>
      new Promise<string>((resolve) => {
        const socket = net.connect(port, "127.0.0.1")
        let answer = ""
        socket.on("data", (chunk: Buffer) => (answer += chunk.toString()))
        socket.on("close", () => resolve(answer))
        socket.on("error", () => undefined)
        socket.write(bytes)
      })
    try {
      const huge = await exchange(`GET /api/v1/concerts HTTP/1.1\r\nHost: localhost\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`)
      expect(huge.split("\r\n")[0]).toBe("HTTP/1.1 431 Request Header Fields Too Large")
      expect(huge).toContain("content-type: application/json")
      expect(JSON.parse(huge.slice(huge.indexOf("\r\n\r\n") + 4))).toEqual({ error: "request headers are larger than the server accepts" })
      // A body longer than its Content-Length: the rest is read as the next request, which is not HTTP.
      const longer = await exchange(`POST /x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n{"a":1}`)
      const last = longer.slice(longer.lastIndexOf("HTTP/1.1 "))
      expect(last.split("\r\n")[0]).toBe("HTTP/1.1 400 Bad Request")
      expect(JSON.parse(last.slice(last.indexOf("\r\n\r\n") + 4))).toEqual({ error: "the request is not valid HTTP" })
    } finally {
      await closed(server)
    }
  })

  it("a request without a Host header (HTTP/1.0 allows it) reaches the API as sent to the address and port it arrived on", async () => {
    const server = new ServiceServer()
    const port = await listening(server)
    // Links in answers are built on the Host header: without one they would lose the port.
    server.on("request", (request: http.IncomingMessage, response: http.ServerResponse) => response.end(request.headers.host))
    try {
      expect(await hostSeen(port, "127.0.0.1")).toBe(`127.0.0.1:${port}`)
      // A Host that is sent is left as it is.
      expect((await rawRequest(port, "GET", "/api/v1/concerts", undefined, { host: "tickets.example.com:8080" })).body)
        .toBe("tickets.example.com:8080")
    } finally {
      await closed(server)
    }
    // Listening on every address, IPv6 included (where the machine has it): an IPv4 client's
    // address is named as IPv4, an IPv6 one in brackets.
    const dual = new ServiceServer()
    const listens = await new Promise<boolean>((resolve) => {
      dual.once("error", () => resolve(false))
      dual.listen(0, "::", () => resolve(true))
    })
    if (!listens) return
    dual.on("request", (request: http.IncomingMessage, response: http.ServerResponse) => response.end(request.headers.host))
    const dualPort = (dual.address() as AddressInfo).port
    try {
      expect(await hostSeen(dualPort, "127.0.0.1")).toBe(`127.0.0.1:${dualPort}`)
      expect(await hostSeen(dualPort, "::1")).toBe(`[::1]:${dualPort}`)
    } finally {
      await closed(dual)
    }
  })

  it("at its connection cap, a new connection takes the place of the oldest idle one", async () => {
    const server = new ServiceServer({ maxConnections: 3 })
    const port = await listening(server)
    server.on("request", (_request: http.IncomingMessage, response: http.ServerResponse) => response.end("ok"))
    const agents = Array.from({ length: 4 }, () => new Agent({ keepAlive: true, maxSockets: 1 }))
    const get = (agent: Agent) =>
      new Promise<number>((resolve, reject) =>
        request({ host: "127.0.0.1", port, path: "/", agent }, (response) => {
          response.resume()
          response.on("end", () => resolve(response.statusCode ?? 0))
        }).on("error", reject).end())
    try {
      for (const agent of agents.slice(0, 3)) expect(await get(agent)).toBe(200)
      expect(server.openConnections).toBe(3)
      const firstClosed = new Promise((resolve) => Object.values(agents[0]!.freeSockets)[0]![0]!.once("close", resolve))
      expect(await get(agents[3]!)).toBe(200)
      await firstClosed
      expect(server.openConnections).toBe(3)
    } finally {
      agents.forEach((agent) => agent.destroy())
      await closed(server)
    }
  })
})
