// Command waiter is a stand-in server for the labtest tests: it prints
// "noise", then "listening n=7", waits for SIGINT or SIGTERM and exits with
// status 3 after printing "bye", or exits 4 at once when run with "fail".
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "fail" {
		fmt.Fprintln(os.Stderr, "waiter: failing")
		os.Exit(4)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	fmt.Println("noise")
	fmt.Println("listening n=7")
	<-sig
	fmt.Fprintln(os.Stderr, "bye")
	os.Exit(3)
}
