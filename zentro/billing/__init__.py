"""Plans and billing: the Lemon Squeezy subscription webhook, the org's plan tier, checkout and portal links."""
