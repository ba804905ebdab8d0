// The FliptEngine module. Its contents arrive with the issues that build it.
