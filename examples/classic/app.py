"""The classic Flask-SocketIO setup, unedited: `SocketIO(app)` with no async_mode, and eventlet
installed beside gunicorn (as the classic guides say). devstack runs it under its own worker."""

from flask import Flask, render_template_string
from flask_socketio import SocketIO, emit

app = Flask(__name__)
socketio = SocketIO(app)

PAGE = """<!doctype html>
<title>classic</title>
<link rel="stylesheet" href="/static/style.css">
<p id="status">classic app</p>
<script src="/static/js/socket.io.min.js"></script>
<script>
  const socket = io();
  socket.on("connect", () => socket.emit("echo", {hello: "world"}));
  socket.on("echo", (data) => { document.getElementById("status").textContent = "echo: " + data.hello; });
</script>
"""


@app.route("/")
def index():
    return render_template_string(PAGE)


@socketio.on("echo")
def on_echo(data):
    emit("echo", data)


if __name__ == "__main__":
    socketio.run(app)
