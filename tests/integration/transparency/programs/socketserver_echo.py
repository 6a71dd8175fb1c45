"""A socketserver echo service in a thread and a socket client."""
import socket
import socketserver
import threading
import uuid


class Echo(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            self.wfile.write(line.upper())


with socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo) as server:
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    with socket.create_connection(server.server_address) as client:
        for line in open("notes/b.txt").read().splitlines():
            client.sendall(f"{line} {uuid.uuid4().hex[:6]}\n".encode())
        client.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := client.recv(4096):
            received += chunk
    print(received.decode(), end="")
    server.shutdown()
    thread.join()
