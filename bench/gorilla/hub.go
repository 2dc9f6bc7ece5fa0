// A gorilla/websocket hub in the style of gorilla's chat example (and Kashvi's pkg/ws): a hub
// goroutine with register, unregister and broadcast channels, a 256-message send channel per
// client (a full channel drops the client), a read pump and a write pump per connection.
// Unlike the chat example, queued messages are not joined into one frame with newlines: each
// message stays its own frame, as every other server in the benchmark sends it.
//
// Listens on HOST:PORT (127.0.0.1:0 by default) and logs "gorilla listening on http://ADDR/".
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/gorilla/websocket"
)

const (
	writeWait      = 10 * time.Second
	pongWait       = 60 * time.Second
	pingPeriod     = (pongWait * 9) / 10
	maxMessageSize = 512 * 1024
)

type message struct {
	kind int
	data []byte
}

type client struct {
	hub  *hub
	conn *websocket.Conn
	send chan message
}

type hub struct {
	clients    map[*client]bool
	broadcast  chan message
	register   chan *client
	unregister chan *client
}

func (h *hub) run() {
	for {
		select {
		case c := <-h.register:
			h.clients[c] = true
		case c := <-h.unregister:
			if _, ok := h.clients[c]; ok {
				delete(h.clients, c)
				close(c.send)
			}
		case m := <-h.broadcast:
			for c := range h.clients {
				select {
				case c.send <- m:
				default:
					close(c.send)
					delete(h.clients, c)
				}
			}
		}
	}
}

func (c *client) readPump() {
	defer func() {
		c.hub.unregister <- c
		c.conn.Close()
	}()
	c.conn.SetReadLimit(maxMessageSize)
	c.conn.SetReadDeadline(time.Now().Add(pongWait))
	c.conn.SetPongHandler(func(string) error { c.conn.SetReadDeadline(time.Now().Add(pongWait)); return nil })
	for {
		kind, data, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		c.hub.broadcast <- message{kind, data}
	}
}

func (c *client) writePump() {
	ticker := time.NewTicker(pingPeriod)
	defer func() {
		ticker.Stop()
		c.conn.Close()
	}()
	for {
		select {
		case m, ok := <-c.send:
			c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if !ok {
				c.conn.WriteMessage(websocket.CloseMessage, []byte{})
				return
			}
			w, err := c.conn.NextWriter(m.kind)
			if err != nil {
				return
			}
			w.Write(m.data)
			if err := w.Close(); err != nil {
				return
			}
		case <-ticker.C:
			c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if err := c.conn.WriteMessage(websocket.PingMessage, nil); err != nil {
				return
			}
		}
	}
}

var upgrader = websocket.Upgrader{
	ReadBufferSize:  1024,
	WriteBufferSize: 1024,
	CheckOrigin:     func(r *http.Request) bool { return true },
}

func main() {
	h := &hub{
		clients:    make(map[*client]bool),
		broadcast:  make(chan message),
		register:   make(chan *client),
		unregister: make(chan *client),
	}
	go h.run()
	http.HandleFunc("/ws/chat", func(w http.ResponseWriter, r *http.Request) {
		conn, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		c := &client{hub: h, conn: conn, send: make(chan message, 256)}
		h.register <- c
		go c.writePump()
		go c.readPump()
	})
	host, port := os.Getenv("HOST"), os.Getenv("PORT")
	if host == "" {
		host = "127.0.0.1"
	}
	if port == "" {
		port = "0"
	}
	ln, err := net.Listen("tcp", host+":"+port)
	if err != nil {
		panic(err)
	}
	fmt.Printf("gorilla listening on http://%s/\n", ln.Addr())
	panic(http.Serve(ln, nil))
}
