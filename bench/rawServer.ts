/** The ceiling: raw `node:http` answering every request with a constant ticket-sized 201 body. */
import * as http from "node:http"

const body = JSON.stringify({
  id: "00000000-0000-4000-8000-000000000000",
  concert: { id: "00000000-0000-4000-8000-000000000001", url: "http://127.0.0.1/api/v1/concerts/00000000-0000-4000-8000-000000000001" },
  user: { id: "00000000-0000-0000-0000-000000000001", url: "http://127.0.0.1/api/v1/users/00000000-0000-0000-0000-000000000001" },
  print_status: "NOT_PRINTED"
})
const port = Number(process.env.PORT ?? 0)
const server = http.createServer({ keepAliveTimeout: 65_000 }, (request, response) => {
  request.resume()
  request.on("end", () => {
    response.writeHead(201, { "content-type": "application/json", "content-length": Buffer.byteLength(body) })
    response.end(body)
  })
})
server.listen(port, "127.0.0.1")
process.on("SIGTERM", () => server.close(() => process.exit(0)))
