"""An installed app whose handlers nobody imports: start-up discovery finds them."""
