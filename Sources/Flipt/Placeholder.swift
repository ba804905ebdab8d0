// The Flipt module. Its contents arrive with the issues that build it.
