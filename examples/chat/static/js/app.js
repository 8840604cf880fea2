// Connects over WebSocket only: if nginx drops the Upgrade headers this fails loudly.
const socket = io({ transports: ["websocket"] });
const status = document.getElementById("status");
socket.on("connect", () => { status.textContent = "connected"; });
socket.on("disconnect", () => { status.textContent = "disconnected"; });
socket.on("chat", (msg) => {
  const li = document.createElement("li");
  li.textContent = msg;
  document.getElementById("messages").appendChild(li);
});
document.getElementById("form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = document.getElementById("input");
  if (input.value) { socket.emit("chat", input.value); input.value = ""; }
});
